"""analyze: ground truth and predictions in FiftyOne, evaluation, saved views, the App (imports nothing from cli/)."""
