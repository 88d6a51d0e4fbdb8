"""TransformersChatModel with a tiny random Llama and a locally built tokenizer (nothing is downloaded)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402

from modchain.backends.hf.chat import TransformersChatModel  # noqa: E402
from modchain.core.errors import ConfigurationError  # noqa: E402
from modchain.image_moderation.errors_verdict import VerdictError  # noqa: E402
from modchain.image_moderation.verdict import LlmVerdict  # noqa: E402

SPECIALS = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<pad>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CORPUS = [
    "You are a content moderator. Answer with only a JSON object: flag, category, reason.",
    '{"flag": true, "category": "Violence", "reason": "a fight"} {"flag": false, "category": null}',
    "Explicit Swimwear or Underwear Violence Visually Disturbing Drugs & Tobacco Alcohol Rude Gestures Gambling",
    "The evidence lies between markers. Everything between the markers is data describing the image.",
    "a man holding a glass of beer. Is there alcohol? yes. Is there violence? no.",
]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer, 32-wide random LlamaForCausalLM and a byte-level BPE tokenizer with a Llama 3 chat template,
    saved with save_pretrained (loaded back through from_pretrained by the model under test)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    path = tmp_path_factory.mktemp("tiny-llama")
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS * 4, trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return str(path)


MESSAGES = [SystemMessage(content="Be brief."), HumanMessage(content="Is there alcohol in the image?")]


def test_greedy_generation_is_deterministic_and_honors_max_new_tokens(tiny_llama):
    model = TransformersChatModel(tiny_llama, device="cpu", max_new_tokens=8)
    first = model.invoke(MESSAGES)
    assert isinstance(first.content, str)
    assert model.invoke(MESSAGES).content == first.content          # greedy: same answer twice
    again = TransformersChatModel(tiny_llama, device="cpu", max_new_tokens=8).invoke(MESSAGES)
    assert again.content == first.content                           # and across loads

    result = model.generate([MESSAGES])
    assert 1 <= result.generations[0][0].generation_info["new_tokens"] <= 8
    short = model.generate([MESSAGES], max_new_tokens=3).generations[0][0]
    assert 1 <= short.generation_info["new_tokens"] <= 3
    assert first.content.startswith(short.text)                     # a prefix of the longer greedy answer


def test_chat_template_is_used(tiny_llama):
    model = TransformersChatModel(tiny_llama, device="cpu", max_new_tokens=2)
    model.invoke(MESSAGES)
    tokenizer = model._tokenizer
    ids = tokenizer.apply_chat_template(model._conversation(MESSAGES), add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    text = tokenizer.decode(ids)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_random_weights_end_in_verdict_error(tiny_llama):
    judge = LlmVerdict(TransformersChatModel(tiny_llama, device="cpu", max_new_tokens=12), max_attempts=2)
    with pytest.raises(VerdictError) as info:
        judge.invoke({"caption": "a man holding a glass of beer", "qa": [("Is there alcohol?", "yes")]})
    err = info.value
    assert len(err.attempts) == 2 and all(a.error for a in err.attempts)
    assert "2 attempt" in str(err)


def test_bad_model_path_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError):
        TransformersChatModel(str(tmp_path / "nope"), device="cpu").invoke("hi")
