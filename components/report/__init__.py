"""The per-task report: the ReportGen component (`component`), reading TFMA's
output (`tfma_reader`) and the Trainer's curves (`history`), the HTML page
(`page`, `plots`) and the model card (`model_card`)."""
