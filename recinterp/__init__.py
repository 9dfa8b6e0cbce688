"""recinterp: RecInterpreter and DreamRec as a thin, readable library.

Where each idea of the papers lives, in import order (the README's Layout has one line each):

- ``recinterp.config``         presets, paths, the notebook <-> preset-section map
- ``recinterp.labels``         how prose names the encoders (pure Python: the report imports no torch)
- ``recinterp.metrics``        the ranking function, HR/NDCG, bootstrap confidence intervals
- ``recinterp.params``         notebook parameters declared, checked (names, types)
- ``recinterp.llm_source``     where an LLM name points; failing fast offline
- ``recinterp.data``           MovieLens-100K / Steam in the LLaRA processed form (verified, cached)
- ``recinterp.textmatch``      literal title matching in generated text
- ``recinterp.novelty``        is a generated title in the catalogue? genre overlap
- ``recinterp.models``         SASRec, GRU4Rec, Caser (one file each), DreamRec, training, checkpoints
- ``recinterp.llm``            the frozen LLM (embedded SmolLM2 or any HF causal LM)
- ``recinterp.adapter``        the adapter mapping recommender states to soft tokens
- ``recinterp.prompts``        prompt builders with placeholder expansion
- ``recinterp.collator``       examples -> one tokenised batch (targets truncated)
- ``recinterp.interpreter``    splicing soft tokens into the frozen LLM; loss, scoring, generation
- ``recinterp.memory``         the frozen LLM's memory plan (estimate, measured saved tensors)
- ``recinterp.align``          token-space alignment (no LLM pass): item aligner, readouts, structured adapter
- ``recinterp.cases``          the cached cases every task, the trainer and the probes share; the task registry
- ``recinterp.controls``       the model's reading and its controls, paired differences
- ``recinterp.train_adapter``  the adapter-only training loop (accelerate, resumable)
- ``recinterp.probes``         likelihood-ranking probes and encoder-space references
- ``recinterp.tasks``          item alignment, sequence recovery (task 1), sequence residual (task 2);
                               end to end (``run_task``) or in token space (``run_aligned``)
- ``recinterp.plan``           resolve_preset: a preset over the library defaults, per run
- ``recinterp.instantiation``  ideal-item instantiation (task 3) and its measurements
- ``recinterp.judges``         the pairwise judging protocol and a local LLM judge
- ``recinterp.openai_judge``   an OpenAI-compatible judge
- ``recinterp.trained``        a trained interpreter in one call: ``load_interpreter(adapter folder)``
- ``recinterp.report``         the layout of tasks 1-2's metrics.json (``.tables``: its tables; ``.cli``: the headline check)
- ``recinterp.grid``           the grid runner: a task over datasets x encoders x routes (notebooks 03, 04)
- ``recinterp.figures``        the paper's figures from every notebook's metrics.json
- ``recinterp.reproduce``      runs the numbered notebooks with papermill (``make reproduce``)
- ``recinterp.book``           the executed notebooks as a static HTML book (``make book``)
"""

__version__ = "0.1.0"


def load_interpreter(*args, **kwargs):
    """A saved adapter, its LLM, encoder and titles, ready to ask: see ``recinterp.trained``."""
    from recinterp.trained import load_interpreter as _load

    return _load(*args, **kwargs)
