// The backbone: built from a ModelConfig (hybrids included), logits of the right shape, tied
// embeddings, the two AdamW parameter groups, and config errors that name the field.
#include <set>

#include "models/lm.h"
#include "tests/catch.h"

using namespace m2b;
using namespace m2b::models;

static ModelConfig small_config(std::vector<LayerConfig> layers, int64_t n_layers = 2) {
  ModelConfig c;
  c.vocab_size = 11;
  c.d_model = 16;
  c.n_layers = n_layers;
  c.layers = std::move(layers);
  return c;
}

// The OptionError thrown by validate() as "key: message", or "" when the config is valid.
static std::string validation_error(const ModelConfig& c) {
  try {
    c.validate();
  } catch (const OptionError& e) {
    return e.key() + ": " + e.what();
  }
  return "";
}
static std::string error_key(const ModelConfig& c) {
  const std::string e = validation_error(c);
  return e.substr(0, e.find(": "));
}
static bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("LanguageModel maps tokens to logits over the vocabulary", "[lm]") {
  torch::manual_seed(0);
  LanguageModel model(small_config({{"attention", {}}}));
  auto tokens = torch::randint(0, 11, {3, 5}, torch::kLong);
  auto logits = model->forward(tokens);
  CHECK(logits.sizes() == torch::IntArrayRef({3, 5, 11}));
  CHECK(torch::isfinite(logits).all().item<bool>());
  model->to(torch::kFloat64);
  CHECK(model->forward(tokens).scalar_type() == torch::kFloat64);
}

TEST_CASE("A shorter layers list repeats to build a hybrid", "[lm]") {
  LanguageModel model(
      small_config({{"gru", {}}, {"gru", {}}, {"attention", {{"num_heads", int64_t{2}}}}}, 6));
  auto params = model->named_parameters();
  for (int i : {0, 1, 3, 4})
    CHECK(params.contains("block" + std::to_string(i) + ".mixer.rnn.weight_hh_l0"));
  for (int i : {2, 5}) CHECK(params.contains("block" + std::to_string(i) + ".mixer.qkv.weight"));
  CHECK_FALSE(params.contains("block6.mlp.down.weight"));
  CHECK(model->forward(torch::zeros({2, 4}, torch::kLong)).sizes() ==
        torch::IntArrayRef({2, 4, 11}));
}

TEST_CASE("A config's parameter_count is the number of parameters its model builds", "[lm]") {
  for (bool tied : {false, true}) {
    auto config = small_config({{"gru", {}}, {"m2rnn", {}}, {"attention", {}}}, 5);
    config.tie_embeddings = tied;
    config.mlp_hidden = tied ? 24 : 0;
    LanguageModel model(config);
    int64_t built = 0;
    for (const auto& p : model->parameters()) built += p.numel();
    INFO("tied " << tied);
    CHECK(config.parameter_count() == built);
  }
}

TEST_CASE("Tied embeddings use the embedding matrix as the head", "[lm]") {
  auto config = small_config({{"rnn", {}}});
  LanguageModel untied(config);
  config.tie_embeddings = true;
  LanguageModel tied(config);
  CHECK(untied->named_parameters().contains("head.weight"));
  CHECK_FALSE(tied->named_parameters().contains("head.weight"));
  CHECK(untied->parameters().size() == tied->parameters().size() + 1);
  // Changing the embedding changes the head: a token whose embedding row grows gets larger logits.
  auto tokens = torch::zeros({1, 1}, torch::kLong);
  auto before = tied->forward(tokens).detach();
  {
    torch::NoGradGuard no_grad;
    tied->named_parameters()["embedding.weight"][7].mul_(100);
  }
  auto after = tied->forward(tokens).detach();
  CHECK(after[0][0][7].abs().item<float>() > before[0][0][7].abs().item<float>());
}

TEST_CASE("Parameter groups partition the parameters; norms, biases and gates are not decayed",
          "[lm]") {
  LanguageModel model(small_config({{"lstm", {}}, {"attention", {}}}));
  auto decayed = model->decayed_parameters();
  auto undecayed = model->undecayed_parameters();
  std::set<const void*> d, u, all;
  for (auto& p : decayed) d.insert(p.data_ptr());
  for (auto& p : undecayed) u.insert(p.data_ptr());
  for (auto& p : model->parameters()) all.insert(p.data_ptr());
  CHECK(d.size() == decayed.size());
  CHECK(u.size() == undecayed.size());
  CHECK(decayed.size() + undecayed.size() == all.size());
  for (auto* p : d) CHECK(u.count(p) == 0);
  auto params = model->named_parameters();
  for (const auto& item : params) {
    INFO(item.key());
    const bool is_decayed = d.count(item.value().data_ptr()) == 1;
    CHECK(is_decayed == (item.value().dim() >= 2));
  }
  CHECK(u.count(params["final_norm.weight"].data_ptr()) == 1);
  CHECK(u.count(params["block0.mixer.rnn.bias_ih_l0"].data_ptr()) == 1);
  CHECK(d.count(params["block1.mixer.qkv.weight"].data_ptr()) == 1);
  CHECK(d.count(params["embedding.weight"].data_ptr()) == 1);
}

TEST_CASE("Bad model configs are rejected with the offending field as key", "[lm]") {
  auto good = small_config({{"attention", {}}});
  CHECK(error_key(good) == "");

  auto c = good;
  c.vocab_size = 0;
  CHECK(error_key(c) == "model.vocab_size");
  c = good;
  c.d_model = -4;
  CHECK(error_key(c) == "model.d_model");
  c = good;
  c.n_layers = 0;
  CHECK(error_key(c) == "model.n_layers");
  c = good;
  c.mlp_hidden = -1;
  CHECK(error_key(c) == "model.mlp_hidden");
  c = good;
  c.layers.clear();
  CHECK(error_key(c) == "model.layers");
  c = small_config({{"rnn", {}}, {"rnn", {}}, {"rnn", {}}}, 2);
  CHECK(error_key(c) == "model.layers");

  c = small_config({{"rnn", {}}, {"no_such_mixer", {}}});
  CHECK(error_key(c) == "model.layers[1].mixer");
  CHECK(mentions(validation_error(c), "no_such_mixer"));
  CHECK(mentions(validation_error(c), "attention"));

  c = small_config({{"rnn", {}}, {"attention", {{"num_heads", int64_t{3}}}}});
  CHECK(error_key(c) == "model.layers[1].num_heads");
  CHECK(mentions(validation_error(c), "must divide d_model"));
  c = small_config({{"attention", {{"num_heads", int64_t{0}}}}});
  CHECK(error_key(c) == "model.layers[0].num_heads");
  c = small_config({{"attention", {{"positional", std::string("alibi")}}}});
  CHECK(error_key(c) == "model.layers[0].positional");
  c = small_config({{"gru", {{"hidden", int64_t{8}}}}});
  CHECK(error_key(c) == "model.layers[0].hidden");
  CHECK(mentions(validation_error(c), "hidden_size"));

  CHECK_THROWS_AS(LanguageModel(small_config({})), OptionError);
}
