"""LLM engines behind one seam (transformers, llama.cpp, vLLM)."""

from kirag.llm.base import LLMEngine

__all__ = ["LLMEngine"]
