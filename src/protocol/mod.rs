//! Device protocol: the seed system's WebSocket messages as types, parsed and rendered by pure
//! codecs (no IO). `transport` feeds it text frames; `court` consumes the typed messages.
