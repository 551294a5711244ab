"""Tokenizers trained in-process for tiny checkpoints: a byte-level BPE for language models
and a WordPiece for Q-Former text encoders. No downloads; a few hundred milliseconds."""

from __future__ import annotations

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

# Enough English to give the tokenizers real merges; the tiny models never learn from it.
CORPUS = """
the a an is are was were be this that these those what which who where when how why
image picture photo shows there one two three four five red green blue yellow black white
cat dog person car tree house sky sun circle square triangle left right top bottom middle
question answer describe compare first second text read find count color colour shape
hello world please thank you yes no maybe here it of in on at to for with and or not
USER ASSISTANT Question Answer system user assistant
""".split()

LM_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


def _corpus() -> list[str]:
    words = CORPUS
    return [" ".join(words[i : i + 12]) for i in range(0, len(words), 3)] * 4


def train_bpe(vocab_size: int = 320, image_attribute: bool = True):
    """A byte-level BPE like Llama/OPT tokenizers, wrapped for transformers. With
    `image_attribute`, `tokenizer.image_token` names "<image>" (LLaVA checkpoints do this; the
    BLIP-2 processors add the token themselves and want no such attribute)."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=LM_SPECIALS,
        # printable ASCII plus space and newline (as byte-level maps them): a random model then
        # babbles in readable words and symbols instead of broken UTF-8 fragments
        initial_alphabet=[chr(c) for c in range(0x21, 0x7F)] + ["\u0120", "\u010a"],
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"} if image_attribute else None,
        padding_side="left",
    )


def train_wordpiece(vocab_size: int = 200):
    """A BERT-style WordPiece tokenizer (Q-Former text input), wrapped for transformers."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=BERT_SPECIALS, show_progress=False
    )
    tok.train_from_iterator(_corpus(), trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[DEC]",
    )
