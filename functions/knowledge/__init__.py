"""Knowledge search tool Lambda."""
