"""Kubernetes-style controllers built on list-watch over the store."""
