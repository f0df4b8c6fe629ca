"""HAR Studio: human activity recognition on UCF50 with the report's ConvLSTM and LRCN."""

__version__ = "0.1.0"
