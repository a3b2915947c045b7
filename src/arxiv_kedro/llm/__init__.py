"""LLM access: chat-completion client, offline summarizer, output checks, summary documents."""
