"""The phrase lexicons and featurizer settings of the offline toxicity and prompt-safety classifiers
(``train_text_classifiers.py``): phrase -> class token, written into each model file."""

from __future__ import annotations

from modchain.backends.local import linear_model as lm
from modchain.backends.local.normalize import normalize_for_model

__all__ = ["PS_CONFIG", "PS_LEXICON", "TOX_CONFIG", "TOX_LEXICON", "lexicon_map"]


def _words(*chunks: str) -> list[str]:
    return [w.strip() for chunk in chunks for w in chunk.split(",") if w.strip()]


TOX_LEXICON: dict[str, list[str]] = {
    "<GROUP>": _words(
        "women, woman, girls, females, trans people, transgender people, trans person, transgender person, trans women,"
        "trans woman, trans men, trans man, transgender, transgenders, trans, gay people, gay person, gay men, gay man,"
        "gays, gay, lesbians, lesbian, bisexual people, bisexuals, bisexual, homosexuals, homosexual, queer people,"
        "lgbt people, lgbtq people, lgbt, lgbtq, black people, black person, black man, black men, black woman,"
        "black women, black folks, black kids, blacks, african americans, african american, africans, african,"
        "disabled people, disabled person, the disabled, disabled, people with disabilities, person with a disability,"
        "handicapped people, wheelchair users, wheelchair user, autistic people, autistic person, deaf people,"
        "deaf person, blind people, mentally disabled people, mentally ill people, muslims, muslim, muslim women,"
        "islam, immigrants, immigrant, refugees, refugee, migrants, migrant, asylum seekers, asylum seeker,"
        "foreigners, foreigner, illegals, jews, jew, jewish people, jewish, asians, asian people, asian, chinese people,"
        "chinese person, chinese, japanese people, koreans, filipinos, mexicans, mexican, latinos, latino, latinas,"
        "hispanics, hispanic, arabs, arab, middle easterners, indians, indian people, pakistanis, pakistani, hindus,"
        "hindu, sikhs, sikh, christians, christian, catholics, catholic, gypsies, gypsy, roma, travellers,"
        "native americans, native american, indigenous people, nigerians, somalis, palestinians, israelis,"
        "white people, whites, elderly people, old people"),
    "<SLUR>": _words(
        "nigger, niggers, faggot, faggots, kike, kikes, kyke, kykes, spic, spics, chink, chinks, wetback, wetbacks,"
        "tranny, trannies, raghead, ragheads, towelhead, towelheads, gook, gooks, beaner, beaners, paki, pakis,"
        "retard, retards, coon, coons, sand nigger, sand niggers, shemale, shemales, fag, fags, cripple, cripples,"
        "spastic, spastics, spaz, mongoloid, mongoloids, gyppo, gyppos, negro, negroes, camel jockey, camel jockeys,"
        "darkie, darkies, jigaboo, porch monkey, slant eye, slanteyes, zipperhead, kaffir, wop, dago, abo, abos"),
    "<RSLUR>": _words("nigga, niggas, niggaz, queer, queers, dyke, dykes, bitch, bitches, hoe, hoes, homo, homos"),
    "<NEG>": _words(
        "disgusting, vile, filthy, dirty, worthless, inferior, stupid, dumb, idiots, idiot, morons, moron, evil,"
        "dangerous, criminals, criminal, terrorists, rapists, thieves, liars, lazy, ugly, pathetic, useless,"
        "retarded, degenerates, degenerate, freaks, perverts, pedophiles, primitive, barbaric, repulsive, revolting,"
        "sick, gross, lowlifes, brainless, dishonest, greedy, violent, ignorant, lesser, abominations, abomination,"
        "a burden, burden, scum, trash, garbage, filth, a disgrace, disgrace, losers, stinking, smelly, stink,"
        "crooks, crook, nasty, awful, terrible, horrible, hideous, the worst, a menace, menace, a problem, pathetic"),
    "<DEHUM>": _words(
        "vermin, rats, animals, animal, apes, monkeys, parasites, parasite, cockroaches, roaches, subhuman,"
        "sub-human, savages, a plague, plague, a disease, disease, a cancer, cancer, a virus, virus, pigs, dogs,"
        "beasts, pests, insects, leeches, an infestation, infestation, creatures, not human, less than human,"
        "human garbage, cattle, swine, filth"),
    "<POS>": _words(
        "great, wonderful, lovely, amazing, brilliant, beautiful, valued, welcome, equal, human, matter, kind, smart,"
        "intelligent, strong, capable, fantastic, awesome, good people, good, nice, friendly, talented, inspiring,"
        "respect, love, proud, admire, support, deserve rights, rights, resilient, the best, heroes"),
    "<VIOL>": _words(
        "kill, killed, killing, murder, murdered, shoot, shot, shooting, stab, stabbed, hang, hanged, hanging, lynch,"
        "lynched, burn, burned, burnt, gas, gassed, exterminate, exterminated, extermination, slaughter, butcher,"
        "execute, executed, eradicate, eradicated, wipe out, wiped out, eliminate, eliminated, get rid of, deport,"
        "deported, beat, beaten, beat up, hurt, die, dead, death, bomb, rape, raped, torture, tortured, drown,"
        "behead, purge, purged, genocide, cull, sterilize, sterilized, destroy, destroyed, bullet, massacre,"
        "slit, strangle, run over, round up, lock up, locked up, cages, camps, wiped off, suffer, rot, perish,"
        "disappear, vanish, bleed, gone"),
    "<HATEV>": _words(
        "hate, hated, hates, hating, despise, loathe, detest, can't stand, cannot stand, sick of, tired of,"
        "disgusted by, disgust, contempt, hatred, make me sick, makes me sick, can't bear, cannot bear"),
    "<YOU>": _words("you, your, you're, youre, u, ya, yourself, ur, y'all, yall"),
    "<PROF>": _words(
        "fuck, fucking, fucked, fucker, fuckers, fuckin, motherfucker, motherfucking, shit, shitty, bullshit, damn,"
        "goddamn, crap, hell, ass, asshole, assholes, bastard, bastards, cunt, cunts, dick, dickhead, piss, prick,"
        "twat, wanker, screw, bloody, f*ck, f*cking, sh*t"),
    "<NOT>": _words(
        "not, never, no, don't, doesn't, isn't, aren't, wasn't, weren't, won't, wouldn't, shouldn't, can't, cannot,"
        "nobody, no one, nothing, none, ain't, didn't, nor"),
    "<REPORT>": _words(
        "say, says, said, saying, statement, statements, claim, claims, claiming, claimed, tweet, tweeted, tweets,"
        "wrote, write, writes, writing, post, posted, posts, posting, comment, comments, call, calls, calling,"
        "called, phrase, phrases, words, quote, quoted, quoting, told, tell, telling, read, sign, graffiti, slogan,"
        "chant, chanted, shouted, yelled, remarks, rhetoric, lie, lies, myth, idea, belief, believe that,"
        "stereotype, stereotypes, hear, heard, repeat"),
    "<COUNTER>": _words(
        "wrong, hurtful, unacceptable, offensive, racist, racism, sexist, sexism, bigoted, bigot, bigots, bigotry,"
        "homophobic, homophobia, transphobic, transphobia, islamophobic, islamophobia, antisemitic, antisemitism,"
        "xenophobic, hateful, hate speech, misguided, condemn, condemned, condemns, shameful, ashamed, appalling,"
        "disgraceful, dehumanising, dehumanizing, harmful, ban, banned, report, reported, prosecuted, arrested,"
        "fight, against, stop, never acceptable, not okay, not ok, excuse, sickening, vile thing, educate,"
        "discrimination, prejudice, oppression, inexcusable, ignorant"),
    "<NONPROT>": _words(
        "lawyers, politicians, bankers, journalists, landlords, accountants, cyclists, gamers, influencers, hipsters,"
        "tourists, billionaires, ceos, critics, referees, telemarketers, salespeople, fans, programmers, tech bros,"
        "lobbyists, estate agents, dealers, pigeons, mosquitoes, coworkers, neighbours, neighbors, trolls, spammers,"
        "managers, dentists, golfers, artists, plumbers, bloggers, stockbrokers, mimes, wasps, drivers, bosses,"
        "teachers, doctors, nurses, cops, police, capitalists, communists, liberals, conservatives, republicans,"
        "democrats, vegans, boomers, millennials, lawyer, politician, banker, landlord, referee, critic"),
    "<I>": _words("i, i'm, im, i'll, i've, we, we'll, we're, me, my, our, us"),
    "<MODAL>": _words(
        "should, must, need to, needs to, ought to, deserve to, deserves to, deserve, deserves, will, gonna,"
        "going to, want to, wanna, have to, has to, let's, lets, time to"),
}

PS_LEXICON: dict[str, list[str]] = {
    # idioms and technical terms that contain a harm word (longest match wins, so these absorb it)
    "<IDIOM>": _words(
        "attack surface, attack vector, attack vectors, panic attack, heart attack, asthma attack, kill switch,"
        "kill time, kill it, killing it, photo shoot, shoot a video, shoot a photo, shoot photos, shoot video,"
        "shoot me an email, shoot me a message, shoot me a text, execute the query, execute a query, execute the script,"
        "execute a script, execute the plan, blow up a balloon, crack an egg, crack the code, life hack, life hacks,"
        "hack together, hackathon, killer feature, killer app, dead code, dead link, dead battery, break a leg,"
        "fire drill, fire alarm, firewall, bug bounty, penetration test, pen test, red team, capture the flag,"
        "smoke test, stress test, brute force attacks, ddos attacks, sql injection, dependency injection"),
    "<HARMV>": _words(
        "kill, killing, murder, poison, poisoning, stab, shoot, strangle, hurt, harm, injure, torture, kidnap,"
        "abduct, rape, assault, attack, bomb, blow up, hack, hack into, hacking, steal, stealing, rob, launder,"
        "smuggle, counterfeit, forge, stalk, blackmail, extort, scam, defraud, dox, doxx, harass, bully, groom,"
        "traffic, drug, spike, burn down, sabotage, break into, cheat, evade, crack, infect, destroy, overdose,"
        "suicide, kill myself, end my life, cut myself, self-harm, choke, drown, behead, shoot up, frame, threaten,"
        "intimidate, manipulate, exploit, sell, buy, synthesize, make, build, get away with, spy on, track,"
        "impersonate, plagiarize, bribe, trick, lure, seduce, molest, abuse, gut, skin alive, dismember, maim,"
        "disfigure, mutilate, cyberbully, burgle, burglarize, phish, shoplift, vandalize, arson, terrorize,"
        "assassinate, execute, slaughter, massacre, starve, suffocate, electrocute, run over, kill themselves,"
        "hang myself, jump off, die"),
    "<PERSON>": _words(
        "someone, somebody, a person, person, people, human, humans, a human, my wife, wife, husband, my husband,"
        "neighbor, neighbour, my neighbor, my neighbour, boss, my boss, coworker, my coworker, ex, my ex,"
        "girlfriend, boyfriend, child, children, kid, kids, baby, him, her, mom, dad, teacher, classmate, cop,"
        "police officer, stranger, victim, victims, grandmother, grandma, roommate, brother, sister, family, man,"
        "woman, girl, boy, student, teenager, teen, minor, minors, elderly, senator, president, politician,"
        "journalist, celebrity, date, partner, employee, customer, patient, my date, a child, a kid, toddler"),
    "<TECH>": _words(
        "process, processes, thread, threads, task, job, jobs, program, app, application, server, container, pod,"
        "session, connection, script, query, command, python, java, linux, terminal, daemon, service, node, docker,"
        "kubernetes, git, branch, loop, function, method, code, bug, warning, error, cache, port, socket, instance,"
        "database, table, file, files, folder, directory, stack, cron, sql, api, browser, css, pid, sigterm,"
        "kill -9, pkill, tmux, vim, ec2, terraform, gpu, cpu, regex, string, variable, dependency, dependencies,"
        "npm, pylint, mypy, eslint, pytest, pandas, csv, json, excel, spreadsheet, laptop, phone settings, router,"
        "firewall, workflow, rebase, commit, repo, node_modules, redis, postgres, mysql, celery, spark, gradle"),
    "<FICTION>": _words(
        "game, video game, minecraft, call of duty, gta, fortnite, skyrim, elden ring, hitman, among us, d&d, dnd,"
        "chess, boss, final boss, zombie, zombies, dragon, npc, character, characters, level, novel, story, book,"
        "movie, film, scene, screenplay, fiction, fictional, villain, plot, poem, song, campaign, mystery,"
        "thriller, short story, comic, play, roleplay game, board game, battle royale, halloween, costume, prop"),
    "<PEST>": _words(
        "weeds, weed, mosquito, mosquitoes, ants, mice, fruit flies, flies, bacteria, germs, mold, mould, bugs,"
        "bed bugs, pests, termites, lobster, fish, chicken, pig, stump, tree, roaches, cockroaches, aphids, slugs,"
        "wasps, fleas, lice, virus on my computer, moss, vine"),
    "<EDU>": _words(
        "history, historical, happened, why did, what is, what was, what are, definition, define, meaning, mean,"
        "explain, caused, causes, who was, documentary, research, paper, studies, study, statistics, origin,"
        "difference between, how did, what does, why was, why were, when was, where was, significance"),
    "<WEAPON>": _words(
        "bomb, bombs, explosive, explosives, gun, guns, firearm, pistol, rifle, ammo, ammunition, silencer,"
        "nerve agent, nerve gas, sarin, ricin, anthrax, napalm, thermite, molotov, molotov cocktail, grenade, ied,"
        "poison, toxin, chlorine gas, bioweapon, chemical weapon, dirty bomb, zip gun, ghost gun, pipe bomb,"
        "weapon, weapons, knife, machete, untraceable gun, assault rifle"),
    "<DRUG>": _words(
        "meth, methamphetamine, cocaine, crack cocaine, heroin, fentanyl, lsd, mdma, drugs, opioids, pills,"
        "ketamine, ghb, rohypnol, roofies, date rape drug, narcotics, oxycodone"),
    "<STEALTH>": _words(
        "without getting caught, without being caught, without anyone knowing, without them knowing,"
        "without her knowing, without him knowing, get away with, getting away with, undetected, untraceable,"
        "secretly, covertly, without leaving a trace, without a trace, unnoticed, without being noticed,"
        "not get caught, avoid detection, evade police, look like an accident, make it look like, without consent,"
        "without permission, anonymously, don't get caught, never be found, without anyone noticing,"
        "without the police knowing, without a background check, behind their back, on the dark web, dark web,"
        "not get caught, untraceable, hide, hidden, off the books"),
    "<INSTR>": _words(
        "how to, how do i, how can i, how do you, how would i, how could i, step by step, step-by-step,"
        "instructions, guide, tutorial, detailed, ways to, best way, easiest way, quickest way, teach me,"
        "show me how, explain how, tell me how, give me, write, create, generate, develop, provide, recipe, plan,"
        "list, draft, design, help me"),
    "<SAFETY>": _words(
        "safely, safe, safety, protect, prevent, prevention, detect, defend, defense, defence, secure, report,"
        "recognize, recognise, signs, warning signs, awareness, dispose, legally, legal, legitimate, my own,"
        "ethical, authorized, authorised, permission, harden, mitigate, mitigation, avoid, victim of, help a friend,"
        "warn, symptoms, treat, treatment, cope, support, quit, stop"),
    "<JB>": _words(
        "dan, stan, developer mode, no restrictions, unfiltered, uncensored, unrestricted, stay in character,"
        "do anything now, jailbreak, jailbroken, amoral, opposite mode, god mode, no ethics, no morals,"
        "no guidelines, no filters, without any restrictions, never refuse, don't refuse, not refuse,"
        "disclaimers, disclaimer, warnings, content policy, openai, chatgpt, antigpt, evil, hypothetically,"
        "simulation, simulate, fictional world, two responses, both, policies, guidelines, rules, censorship,"
        "free from, broken free, confines, character, persona, roleplay, pretend, act as, you are now"),
    "<INJ>": _words(
        "ignore, disregard, forget, override, system prompt, system message, instructions, previous instructions,"
        "prior instructions, above, new instructions, reveal, print, repeat, verbatim, initial prompt,"
        "hidden instructions, password, secret key, api keys, admin, administrator, exfiltrate, forward, send,"
        "webhook, url, http, https, inst, sys, system"),
    "<YOU>": _words("you, your, you're, yourself, u"),
    "<NOT>": _words("not, never, no, don't, doesn't, isn't, aren't, won't, can't, cannot, without"),
}

TOX_CONFIG = {"max_tokens": 600, "abstract_order": 3, "window": 6, "char_orders": [4, 4], "max_char_tokens": 150,
              "negatable": ["<NEG>", "<DEHUM>", "<POS>", "<VIOL>", "<HATEV>"], "negator": "<NOT>", "sentinel": True}
PS_CONFIG = {"max_tokens": 1500, "abstract_order": 3, "window": 5, "char_orders": [4, 4], "max_char_tokens": 150,
             "negatable": ["<HARMV>"], "negator": "<NOT>", "sentinel": True}


def lexicon_map(spec: dict[str, list[str]]) -> dict[str, str]:
    """phrase (tokenized the way the featurizer tokenizes) -> class; the first class listed wins."""
    out: dict[str, str] = {}
    for cls, phrases in spec.items():
        for p in phrases:
            key = " ".join(lm.tokenize(normalize_for_model(p)))
            if key and key not in out:
                out[key] = cls
    return out
