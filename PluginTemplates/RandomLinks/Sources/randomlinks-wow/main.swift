import RandomLinks
import WOWCommand

// `wow`, every subcommand of it, plus the `randomlinks` link strategy: configs run by `randomlinks-wow run`
// may list `name: randomlinks` under `overlords`.
WOW.main(registering: { _, overlords in
    overlords.register(RandomLinksOverlord.self)
})
