"""Build the tiny random-weight Llama that the end-to-end suite serves with the real vLLM.

No model hub is reachable, so the model is made here: a byte-level BPE tokenizer trained with
`tokenizers` on a generated corpus (with bos/eos and a chat template), and a 2-layer Llama with
random weights saved by transformers. The same seed gives the same files, so a built model is
cached: `build(path)` returns at once when `path` already holds this recipe's stamp."""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

RECIPE = {
    "vocab_size": 1024, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 1024, "seed": 11,
}
"""head_dim 64: a size every vLLM CPU attention backend serves."""

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
_WORDS = ("the model server answers every request token by token while the proxy records latency cost "
          "and drift for each caller gpu memory cache prefill decode batch queue prompt output stream "
          "hello world how are you today tell me a story about a cat and a dog in the park").split()


def _corpus(rng: random.Random, lines: int = 4000) -> list[str]:
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 24))) + rng.choice(".?!")
            for _ in range(lines)]


def build(path: Path) -> Path:
    stamp = path / "campwatch-e2e-recipe.json"
    if stamp.exists() and json.loads(stamp.read_text()) == RECIPE:
        return path
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(RECIPE["seed"])
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=RECIPE["vocab_size"], special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(rng), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", model_max_length=1024)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)

    torch.manual_seed(RECIPE["seed"])
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=RECIPE["hidden_size"], intermediate_size=RECIPE["intermediate_size"],
        num_hidden_layers=RECIPE["num_hidden_layers"], num_attention_heads=RECIPE["num_attention_heads"],
        num_key_value_heads=RECIPE["num_key_value_heads"],
        max_position_embeddings=RECIPE["max_position_embeddings"],
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False, torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    stamp.write_text(json.dumps(RECIPE))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    print(build(args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
