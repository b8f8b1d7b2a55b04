"""Evaluation of the agent: golden-dataset experiments, LLM-as-judge and code evaluators, online scoring
of production traces, HTML/JSON reports and a CI gate. Entry point: `python -m eval` (see docs/evaluation.md).
"""
