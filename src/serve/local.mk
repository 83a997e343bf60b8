# src/serve
