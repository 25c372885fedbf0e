"""Development and operations tools, not needed by the product's workers: the demo, the stack without
Docker, samples, `vodflow submit`, the REST client and the HLS conformance checker."""
