"""kirag inside RAG frameworks: `kirag.integrations.langchain`, `.llama_index`, `.haystack`.
Importing this package imports no framework; each module requires its framework through the
optional extra of the same name (one-line error naming `pip install 'kirag[EXTRA]'`)."""
