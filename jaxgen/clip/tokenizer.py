"""CLIP's tokenizers: the byte-level BPE of OpenAI CLIP (from a Hugging Face CLIPModel's vocab.json and
merges.txt) and the shapes data set's word vocabulary; `run_tokenizer(run)` is whichever a run has.

  tok = BPETokenizer.from_dir("clip-vit-base-patch32", context_length=77)
  ids = tok(["a photo of a cat", "A  DOG!"])        # (2, 77) int32: <|startoftext|> ... <|endoftext|>, pads

The BPE is the `tokenizers` library's, set up as transformers' CLIPTokenizer (and its converter from OpenAI's
`simple_tokenizer`) sets it up, so the ids are theirs: text NFC-normalised, runs of whitespace made one space,
lower-cased; split into OpenAI's pieces ('s 't 're 've 'm 'll 'd, runs of letters, single digits, runs of other
non-space characters); each piece's UTF-8 bytes as GPT-2's printable byte characters, merged by merges.txt with
'</w>' marking a word's last symbol; `<|startoftext|>` first and `<|endoftext|>` last. A caption longer than the
context is cut to its first `context_length - 2` tokens (its end-of-text token kept, as transformers' truncation
does); shorter ones are padded with `pad_id`: HF CLIP's pad token, `<|endoftext|>` unless the directory's
tokenizer_config.json names another (OpenAI's original `clip.tokenize` pads with 0; the causal text tower
pools at the end of text and never sees what follows it, so the embeddings are the same either way).

A run's tokenizer (`run_tokenizer`): config.model.tokenizer = 'bpe' (a converted run: jaxgen.clip.convert_hf
copies vocab.json, merges.txt into WORKDIR/tokenizer/), or 'words' (the default, the trained runs of
experiments.clip_shapes: the shapes data set's 26 words, jaxgen.data.builders.shapes.tokenize, which the run
saves in WORKDIR/tokenizer/words.json when it starts and reads from there afterwards).
"""
from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import numpy as np

VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TOKENIZER_DIR = "tokenizer"          # where a converted run keeps its BPE files, inside the workdir
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# OpenAI's pieces (transformers' CLIPTokenizer adds the two special tokens so they survive as text).
_PIECES = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def pad_token_of(directory: str) -> str:
  """The pad token the directory's tokenizer_config.json names (a string or {'content': ...}), else EOS."""
  path = os.path.join(directory, TOKENIZER_CONFIG_FILE)
  if not os.path.exists(path):
    return EOS
  with open(path) as f:
    pad = json.load(f).get("pad_token") or EOS
  return pad["content"] if isinstance(pad, dict) else str(pad)


class BPETokenizer:
  """OpenAI CLIP's byte-level BPE (transformers' CLIPTokenizer ids), built from the `tokenizers` library."""

  def __init__(self, vocab_file: str, merges_file: str, context_length: int = 77, pad_token: str = EOS):
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE
    for path in (vocab_file, merges_file):
      if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: a CLIP BPE tokenizer needs {VOCAB_FILE} and {MERGES_FILE} "
                                "(a Hugging Face CLIPModel directory ships both)")
    if not isinstance(context_length, int) or context_length < 2:
      raise ValueError(f"context_length={context_length!r} must be an integer >= 2 (start and end of text)")
    with open(vocab_file) as f:
      vocab = json.load(f)
    missing = [t for t in (BOS, EOS, pad_token) if t not in vocab]
    if missing:
      raise ValueError(f"{vocab_file} lacks the special tokens {missing}; a CLIP vocabulary has {BOS} and {EOS}")
    tok = Tokenizer(BPE.from_file(vocab_file, merges_file, dropout=None, continuing_subword_prefix="",
                                  end_of_word_suffix="</w>", fuse_unk=False, unk_token=EOS))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_PIECES), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([BOS, EOS] + ([pad_token] if pad_token not in (BOS, EOS) else []))
    self.bos_id, self.eos_id, self.pad_id = vocab[BOS], vocab[EOS], vocab[pad_token]
    tok.post_processor = processors.RobertaProcessing((EOS, self.eos_id), (BOS, self.bos_id), trim_offsets=False,
                                                      add_prefix_space=False)
    tok.enable_truncation(context_length)
    tok.enable_padding(length=context_length, pad_id=self.pad_id, pad_token=pad_token)
    self.context_length, self.vocab_size, self._tok = context_length, len(vocab), tok

  @classmethod
  def from_dir(cls, directory: str, context_length: int = 77, pad_token: Optional[str] = None) -> "BPETokenizer":
    """The tokenizer of a directory with vocab.json and merges.txt (and, optionally, tokenizer_config.json
    naming the pad token)."""
    pad = pad_token_of(directory) if pad_token is None else pad_token
    return cls(os.path.join(directory, VOCAB_FILE), os.path.join(directory, MERGES_FILE), context_length, pad)

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    """(N, context_length) int32 ids of the texts."""
    if isinstance(texts, str):
      texts = [texts]
    return np.array([e.ids for e in self._tok.encode_batch(list(texts))], np.int32).reshape(
        len(texts), self.context_length)

  def decode(self, ids) -> str:
    """The text of one row of ids, without the special tokens and pads (lower-cased, whitespace cleaned)."""
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=True).replace("</w>", " ").strip()


WORDS_FILE = "words.json"             # a trained run's word vocabulary, inside WORKDIR/tokenizer/


class WordTokenizer:
  """The shapes data set's word vocabulary (jaxgen.data.builders.shapes.tokenize): ids of its 26 words, 0-padded
  to its 24 positions; ValueError naming an unknown word. `vocab` / `max_tokens` (a run's saved vocabulary,
  `from_file`) replace the builder's."""

  def __init__(self, vocab: Optional[Sequence[str]] = None, max_tokens: Optional[int] = None):
    from jaxgen.data.builders.shapes import MAX_TOKENS, VOCAB
    self.vocab, self.max_tokens = tuple(vocab or VOCAB), int(max_tokens or MAX_TOKENS)

  @classmethod
  def from_file(cls, path: str) -> "WordTokenizer":
    with open(path) as f:
      saved = json.load(f)
    return cls(saved["words"], saved["max_tokens"])

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump({"words": list(self.vocab), "max_tokens": self.max_tokens}, f, indent=1)
    os.replace(tmp, path)

  def __call__(self, texts: Sequence[str]) -> np.ndarray:
    from jaxgen.data.builders.shapes import tokenize
    if isinstance(texts, str):
      texts = [texts]
    return np.stack([tokenize(t, self.vocab, self.max_tokens) for t in texts]).astype(np.int32)


def save_run_files(config, workdir: str) -> None:
  """What a CLIP run keeps with it at its start (jaxgen.registry FamilyEntry.run_files): the word vocabulary its
  token ids mean (WORKDIR/tokenizer/words.json), so that its captions are read the same way if the builder's
  vocabulary ever changes; a BPE run's files are already there (the converter copied them). Written once."""
  from jaxgen.clip.build import tokenizer_kind
  path = os.path.join(workdir, TOKENIZER_DIR, WORDS_FILE)
  if tokenizer_kind(config) == "words" and not os.path.exists(path):
    WordTokenizer().save(path)


def run_tokenizer(run, workdir: Optional[str] = None):
  """The tokenizer of a CLIP run (jaxgen.train.run.Run, or its config with `workdir`): BPE from
  WORKDIR/tokenizer/ for model.tokenizer='bpe', the shapes words otherwise."""
  from jaxgen.clip.build import tokenizer_kind
  config = getattr(run, "config", run)
  workdir = workdir or getattr(run, "workdir", None)
  if tokenizer_kind(config) == "words":
    saved = os.path.join(workdir, TOKENIZER_DIR, WORDS_FILE) if workdir else None
    return WordTokenizer.from_file(saved) if saved and os.path.exists(saved) else WordTokenizer()
  if workdir is None:
    raise ValueError("a BPE run's tokenizer lives in its workdir; pass workdir=")
  m = config.model
  return BPETokenizer(os.path.join(workdir, TOKENIZER_DIR, VOCAB_FILE), os.path.join(workdir, TOKENIZER_DIR,
                                                                                      MERGES_FILE),
                      context_length=m.text_len, pad_token=m.get("pad_token") or EOS)
