"""Where a task's prompt pair starts: the data-driven initialisers.

    initialise.py  PromptInit, initialise: the prefix and suffix start `TrainConfig` names (topic, autocot, vocab, random)
    topics.py      topic labels (dataset fields, spaCy NER / noun chunks) and the "semi-hard" vectors made from text
    autocot.py     Auto-CoT: K-means clusters of the questions, one local chain each, merged by the Chain Aggregator
    llm.py         LLMConfig, LLMClient: any OpenAI-compatible endpoint for the chains, answers cached in the store

topics and autocot (spaCy, scikit-learn, faiss) are imported only when a start needs them.
"""

from baas.training.init.initialise import PromptInit, initialise
from baas.training.init.llm import LLMClient, LLMConfig

__all__ = ["LLMClient", "LLMConfig", "PromptInit", "initialise"]
