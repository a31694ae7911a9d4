// The main of the `cpu` test programs.
#include "tests/catch_session.h"

int main(int argc, char** argv) { return run_catch_session(argc, argv); }
