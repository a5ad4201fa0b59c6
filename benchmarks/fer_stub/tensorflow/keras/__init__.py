"""Empty: fer imports ``tensorflow.keras.models`` at module level."""
