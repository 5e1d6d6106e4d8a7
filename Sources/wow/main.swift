import WOWCommand
