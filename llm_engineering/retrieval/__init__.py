"""Retrieval that learns the user's corpus: fine-tuning the embedding model on query pairs."""
