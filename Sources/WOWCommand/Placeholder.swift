import WOWKit
import Transports
import Plugins
import ArgumentParser
