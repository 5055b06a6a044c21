"""The batch lane: queued requests that can wait go to the providers' Batch APIs."""
