"""Input serializers check shape only; output serializers decide what each role may see."""
