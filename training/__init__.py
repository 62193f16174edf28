"""Everything that meets data and the frozen backbone; imports run api -> continual -> trainer/fusion -> the rest.

    data/          MCQ records, one adapter per dataset, loading, the demo tasks
    backbone/      the frozen backbone and the one place prompts enter it
    init/          where a pair starts: topic labels, Auto-CoT chains, the LLM client
    config.py      TrainConfig          batching.py  tokenise once, bucketed batches
    scoring.py     prompts + backbone + head -> logits over each question's options
    loop.py        the one training loop and evaluator     metrics.py  accuracy, macro P/R/F1
    trainer.py     one task's pair: trained, evaluated, saved as a bank entry
    fusion.py      fused inference over the bank: query vectors, summaries, fitting a router, routed evaluation
    cache.py       every cache key, and the token cache      progress.py  Reporter (how training talks)
    parallel.py    data parallelism across processes
    continual/     eval-forgetting: the protocol, its methods and baselines, the report
    api/           the Python API (`import baas`); the CLI calls it
"""
