"""Node-side operations, one module per data kind: read state, change only what differs."""
