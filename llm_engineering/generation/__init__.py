"""Text generation: llama.cpp and OpenAI-compatible backends (answer_with_context, issue 5)."""
