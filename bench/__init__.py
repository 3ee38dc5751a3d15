"""lossd benchmarks (``make bench``): kernels, end to end, a peer, start-up and memory."""
