"""HFModel on a tiny randomly initialised LLaVA built offline (no downloads)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from drivechain.models.base import ImagePart, Message, Request, Response, TextPart
from drivechain.models.registry import load_model

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}"
    "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    """A 2-layer CLIP + 2-layer Llama LLaVA with a BPE tokenizer trained on the fly, saved to disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    out = tmp_path_factory.mktemp("tiny-llava")
    specials = ["<pad>", "<s>", "<unk>", "<image>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["which lane is the ego vehicle in? answer with a letter. the car ahead brakes."] * 5,
                            trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>",
                                        eos_token="<|im_end|>", unk_token="<unk>",
                                        extra_special_tokens={"image_token": "<image>"})
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               num_additional_image_tokens=1, chat_template=CHATML,
                               vision_feature_select_strategy="default")
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=32, patch_size=8, projection_dim=32),
        text_config=LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=512,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                bos_token_id=tokenizer.bos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_request(root: Path, text: str, images: list[str], max_tokens: int = 6) -> Request:
    content = [ImagePart(path=p) for p in images] + [TextPart(text=text)]
    return Request(messages=[Message(role="system", content=[TextPart(text="you drive")]),
                             Message(role="user", content=content)],
                   image_root=str(root), max_tokens=max_tokens)


def test_batched_generation_with_several_images(tiny_llava, tmp_path):
    Image.new("RGB", (600, 150), (30, 120, 60)).save(tmp_path / "f0.png")
    Image.new("RGB", (64, 64), (200, 0, 0)).save(tmp_path / "f1.png")
    requests = [
        make_request(tmp_path, "which lane is the ego vehicle in?", ["f0.png", "f1.png"]),
        make_request(tmp_path, "the car ahead brakes?", []),
        make_request(tmp_path, "answer with a letter", ["f1.png"], max_tokens=3),
        make_request(tmp_path, "bad path", ["../escape.png"]),
    ]
    model = load_model(f"hf:{tiny_llava}", batch_size=2, max_new_tokens=5, timeout_s=3.0)
    assert model.name == f"hf:{tiny_llava.name}"
    batch_sizes = []
    generate = model._generate

    def counting_generate(convs, *args):
        batch_sizes.append(len(convs))
        return generate(convs, *args)

    model._generate = counting_generate

    async def go():
        try:
            return await asyncio.gather(*(model.respond(r) for r in requests))
        finally:
            await model.aclose()

    responses = asyncio.run(go())
    assert all(isinstance(r, Response) for r in responses)
    assert batch_sizes == [2, 1]  # requests 0+1 share a batch; 2 (shorter max_tokens) runs alone
    for resp, limit in zip(responses[:3], (5, 5, 3)):
        assert resp.ok, resp.error
        assert isinstance(resp.text, str) and resp.text.strip()
        assert 0 < resp.usage.completion_tokens <= limit
        assert resp.latency_s > 0 and resp.model == model.name
    # Each image adds (32/8)^2 + 1 = 17 image tokens to the prompt.
    with_two, without, with_one = (r.usage.prompt_tokens for r in responses[:3])
    assert with_two > with_one > without > 0
    assert not responses[3].ok and "escapes" in responses[3].error and not responses[3].retryable


def test_unloadable_model_gives_error_records(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "not-a-model"}')
    model = load_model(f"hf:{tmp_path}")

    async def go():
        try:
            return await model.respond(make_request(tmp_path, "hi", []))
        finally:
            await model.aclose()

    resp = asyncio.run(go())
    assert not resp.ok and "cannot load hf model" in resp.error and resp.text == ""
