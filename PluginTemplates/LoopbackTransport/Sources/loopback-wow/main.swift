import LoopbackTransport
import WOWCommand

// `wow`, every subcommand of it, plus the `loopback` transport: configs run by `loopback-wow run` may list
// `scheme: loopback`.
WOW.main(registering: { transports, _ in
    transports.register(LoopbackTransport.self)
})
