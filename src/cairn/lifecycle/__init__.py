"""What is live: one answer, asked by gc, push, the git hooks, status --cloud and du."""
