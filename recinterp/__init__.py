"""recinterp: RecInterpreter and DreamRec as a thin, readable library.

Where each idea of the papers lives:

- ``recinterp.data``           MovieLens-100K / Steam in the LLaRA processed form (verified, cached)
- ``recinterp.models``         SASRec, GRU4Rec, Caser (one file each), DreamRec, training, checkpoints
- ``recinterp.llm``            the frozen LLM (embedded SmolLM2 or any HF causal LM)
- ``recinterp.adapter``      the adapter mapping recommender states to soft tokens
- ``recinterp.prompts``        prompt builders with placeholder expansion
- ``recinterp.interpreter``    splicing soft tokens into the frozen LLM; loss, scoring, generation
- ``recinterp.train_adapter``  the adapter-only training loop (accelerate, resumable)
- ``recinterp.tasks``          item alignment, sequence recovery (task 1), sequence residual (task 2)
- ``recinterp.probes``         likelihood-ranking probes, their controls, encoder-space references
- ``recinterp.instantiation``  ideal-item instantiation (task 3): DreamRec's item through the residual route
- ``recinterp.textmatch``      literal title matching in generated text
- ``recinterp.novelty``        is a generated title in the catalogue? genre overlap
- ``recinterp.judges``         pairwise judges: a local LLM or any OpenAI-compatible chat model
- ``recinterp.metrics``        HR/NDCG, ranking metrics, bootstrap confidence intervals
- ``recinterp.figures``        the paper's figures from every notebook's metrics.json
- ``recinterp.reproduce``      runs the numbered notebooks with papermill (``make reproduce``)
"""

__version__ = "0.1.0"
