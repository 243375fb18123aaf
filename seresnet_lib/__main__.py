"""``python -m seresnet_lib``: the layer-by-layer summary of SE-ResNet-50 at 224 x 224."""

from torchinfo import summary

from . import count_multiply_adds, count_parameters, seresnet50


def main() -> None:
    model = seresnet50(num_classes=1000)
    print(summary(model, input_size=(1, 3, 224, 224), depth=2, col_names=("output_size", "num_params"),
                  row_settings=("var_names",), verbose=0))
    print(f"SE-ResNet-50: {count_parameters(model):,} parameters, "
          f"{count_multiply_adds(model) / 1e9:.2f} G multiply-adds per 224 x 224 image")


if __name__ == "__main__":
    main()
