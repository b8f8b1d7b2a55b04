"""Tool gateway REQUEST interceptor Lambda."""
