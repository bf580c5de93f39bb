"""thinc and torch: embedding, encoder, CRF, coupling loss, shortlist, optimizer and the registered architectures."""
