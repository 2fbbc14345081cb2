"""Serving beyond one device: a Triton Inference Server model repository for edgepose's
models (repository.py, config.py, and the server-side python_models.py), the wire
contract between it and its clients (contract.py), a client (client.py), and a local
server for tests and a first look (launch.py)."""
