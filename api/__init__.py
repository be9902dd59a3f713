"""HTTP API: REST, WebSocket, authentication and audit."""
