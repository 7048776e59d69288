"""Talk to S3: conditional writes, reads, listings and deletes, the store probe and the request pool."""
