"""KiRAG's reasoning side: the iterative retriever that builds reasoning chains over the triple
index, the chain constructor and reader LLM prompts, the pipeline, and the baselines it is
measured against."""
