// The trainer on a CUDA device, in a fresh process (CUDA not yet initialised): a tiny M2RNN run
// through the cuda backend finishes, learns, and records the device and its memory.
#include "harness/train/trainer.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/tiny_run.h"

using namespace m2b;

TEST_CASE("a tiny m2rnn run trains on the GPU through the cuda backend and records the device",
          "[trainer][gpu]") {
  test::TempDir scratch;
  RunConfig run = test::tiny_run("parity", 60);
  run.model_name = "tiny_m2rnn";
  run.model.layers = {{"m2rnn", {{"backend", OptionValue{std::string("cuda")}}}}};
  run.train.device = "cuda";
  const auto summary = train_run(test::resolved(run), scratch.path(), TrainOptions{});
  REQUIRE(summary);
  CHECK(summary->status == "finished");
  CHECK(summary->steps == 60);
  CHECK(summary->eval.at(0).accuracy > 0.55);  // chance is 0.5
  CHECK(summary->peak_memory_bytes > 0);
  CHECK(summary->provenance.at("device") != "cpu");
}
