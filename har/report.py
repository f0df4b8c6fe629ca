"""What the report (Rana, 2025) states: its results and its layer tables (Figures 1 and 2).

The figures are the ground truth for the architectures; its prose disagrees with them (it describes three
ConvLSTM layers, and Conv2D(32) with LSTM(64) for the LRCN) but the figures are what was trained.
"""

REPORT_RESULTS = {
    "convlstm": {"accuracy": 0.7925, "loss": 0.5773, "parameters": 44_524},
    "lrcn": {"accuracy": 0.8693, "loss": 0.2854, "parameters": 73_060},
}

# (layer type, output shape without the batch dimension, parameters), as printed in Figures 1 and 2.
REPORT_LAYERS = {
    "convlstm": [
        ("ConvLSTM2D", (20, 62, 62, 4), 1_024),
        ("MaxPooling3D", (20, 31, 31, 4), 0),
        ("TimeDistributed", (20, 31, 31, 4), 0),
        ("ConvLSTM2D", (20, 29, 29, 8), 3_488),
        ("MaxPooling3D", (20, 15, 15, 8), 0),
        ("TimeDistributed", (20, 15, 15, 8), 0),
        ("ConvLSTM2D", (20, 13, 13, 14), 11_144),
        ("MaxPooling3D", (20, 7, 7, 14), 0),
        ("TimeDistributed", (20, 7, 7, 14), 0),
        ("ConvLSTM2D", (20, 5, 5, 16), 17_344),
        ("MaxPooling3D", (20, 3, 3, 16), 0),
        ("Flatten", (2880,), 0),
        ("Dense", (4,), 11_524),
    ],
    "lrcn": [
        ("TimeDistributed", (20, 64, 64, 16), 448),
        ("TimeDistributed", (20, 16, 16, 16), 0),
        ("TimeDistributed", (20, 16, 16, 16), 0),
        ("TimeDistributed", (20, 16, 16, 32), 4_640),
        ("TimeDistributed", (20, 4, 4, 32), 0),
        ("TimeDistributed", (20, 4, 4, 32), 0),
        ("TimeDistributed", (20, 4, 4, 64), 18_496),
        ("TimeDistributed", (20, 2, 2, 64), 0),
        ("TimeDistributed", (20, 2, 2, 64), 0),
        ("TimeDistributed", (20, 2, 2, 64), 36_928),
        ("TimeDistributed", (20, 1, 1, 64), 0),
        ("TimeDistributed", (20, 64), 0),
        ("LSTM", (32,), 12_416),
        ("Dense", (4,), 132),
    ],
}
