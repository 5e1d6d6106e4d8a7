import WOWCommand

WOW.main()
