#pragma once
// Runs Catch2's session: the test programs' mains (main.cpp, gpu_main.cpp) call this rather than
// Catch::Session, which Catch2 v2 (Debian 12, a single header) declares only where its whole
// implementation compiles: in catch_session.cpp, once for every program.
int run_catch_session(int argc, char** argv);
