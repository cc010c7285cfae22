"""QLoRA jobs, the adapter registry and GGUF export (start_qlora_job, issue 6)."""
