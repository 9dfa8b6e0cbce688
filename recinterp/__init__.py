"""recinterp: RecInterpreter and DreamRec as a thin, readable library.

Where each idea of the papers lives:

- ``recinterp.data``          MovieLens-100K / Steam in the LLaRA processed form
- ``recinterp.models``        SASRec, GRU4Rec, Caser (one file each) and DreamRec
- ``recinterp.llm``           loading the frozen LLM (embedded SmolLM2 or any HF id)
- ``recinterp.projector``     the adapter that maps recommender states to soft tokens
- ``recinterp.prompts``       prompt builders with placeholder expansion
- ``recinterp.interpreter``   splicing soft tokens into the frozen LLM
- ``recinterp.metrics``       HR/NDCG, ranking metrics, bootstrap confidence intervals
"""

__version__ = "0.1.0"
