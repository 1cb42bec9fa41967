@preprocessor typescript
# Placeholder grammar; the real one lands with issue 2.
main -> null
