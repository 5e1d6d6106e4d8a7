import WOWKit
