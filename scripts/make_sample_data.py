#!/usr/bin/env python
"""Generate the batchinfer sample data set.

Writes ``sample_data/reviews.parquet`` (zstd) and ``sample_data/reviews.csv``
with the same rows and these columns:

    review_id  int64   1..N, in file order
    product    string  a small set of product categories
    text       string  the review (nullable; a few rows are null or "")
    expected   string  "positive", "negative", "mixed", or "none"

All review texts below were written by hand for this project; none are taken
from any existing data set. Most rows are composed from per-product sentences
(an optional neutral opener, one or two body sentences, an optional closer);
the rest are standalone reviews covering the awkward cases: non-English text,
emoji, accented letters, curly quotes and dashes, embedded commas, double
quotes and newlines, and two long (300+ word) reviews.

``expected`` is what a human reader would say. The six rows whose text is
null or the empty string have ``expected == "none"``: there is nothing to
judge, and a pipeline should neither crash nor invent a sentiment for them.

The output is deterministic (fixed seed, fixed order). Run from the repo root:

    python scripts/make_sample_data.py
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import polars as pl

SEED = 20240601
OUT_DIR = Path(__file__).resolve().parent.parent / "sample_data"

PRODUCTS = [
    "headphones",
    "coffee maker",
    "novel",
    "film",
    "hotel",
    "running shoes",
    "restaurant",
    "laptop",
    "vacuum cleaner",
    "board game",
]
PLURAL = {"headphones", "running shoes"}  # closers say "them" instead of "it"

# ---------------------------------------------------------------------------
# Composable sentences: ten positive and ten negative body sentences per
# product. Each body sentence is used exactly once.
# ---------------------------------------------------------------------------

POSITIVE_BODIES = {
    "headphones": [
        "The noise cancelling is genuinely impressive; my train commute went silent.",
        "Bass is punchy without drowning the vocals, and they stay comfortable for hours.",
        "Battery lasted a whole week of office use before I needed to charge them.",
        "Pairing with my phone and laptop at the same time just works.",
        "They fold flat into a tiny case that actually fits in my bag.",
        "Call quality is clear enough that nobody noticed I was on a busy street.",
        "The ear cushions are soft and don't make my ears sweat.",
        "Detailed, warm sound; I'm hearing bits of old albums I never noticed.",
        "They charged from empty to full during my morning shower.",
        "Light enough that I forget I'm wearing them.",
    ],
    "coffee maker": [
        "Makes a properly hot pot in under five minutes.",
        "The timer means coffee is waiting when I wake up, which has changed my mornings.",
        "Easy to descale, and the carafe doesn't drip when pouring.",
        "Espresso comes out with a thick crema every single time.",
        "Quiet enough that it doesn't wake the rest of the house.",
        "The milk frother is simple and makes a lovely velvety foam.",
        "Compact footprint; it fits under the cabinets with room to spare.",
        "Coffee tastes smoother than from my old machine, and less bitter.",
        "Every part that touches water comes apart for cleaning.",
        "The warming plate holds temperature without scorching the brew.",
    ],
    "novel": [
        "I stayed up until 3 a.m. to finish it.",
        "The characters feel like people I've actually met.",
        "Beautifully written prose that never gets in the way of the story.",
        "The twist in the final act sent me straight back to the first page.",
        "A quiet, moving story about grief that never feels heavy-handed.",
        "The dialogue is sharp and often laugh-out-loud funny.",
        "Tightly plotted, and every chapter ends with a reason to keep reading.",
        "The setting is so vivid I could almost smell the sea air.",
        "Easily the best book I've read this year.",
        "Short chapters made it perfect for reading on the bus.",
    ],
    "film": [
        "Gorgeous cinematography and a score I've been humming all week.",
        "The lead gives a career-best performance.",
        "Funny, warm, and surprisingly touching by the end.",
        "Two and a half hours flew by.",
        "The action scenes are clear and inventive instead of a shaky blur.",
        "A smart script that trusts its audience.",
        "The whole cinema applauded when the credits rolled.",
        "Creepy in all the right ways; I slept with the light on.",
        "The chemistry between the two leads is wonderful.",
        "A rare sequel that improves on the original.",
    ],
    "hotel": [
        "Spotless room, comfy bed, and the staff remembered our names.",
        "The breakfast buffet was generous and everything was fresh.",
        "Check-in took two minutes and they upgraded us to a sea view.",
        "Quiet at night despite being right in the city centre.",
        "Easy walking distance to both the old town and the train station.",
        "The pool was warm and never crowded.",
        "Housekeeping left little handwritten notes, which was a lovely touch.",
        "Great value for the location; we'd happily have paid more.",
        "The concierge found us a table at a place we'd never have discovered ourselves.",
        "Proper blackout curtains and a shower with strong pressure.",
    ],
    "running shoes": [
        "Cushioned enough for long runs but they still feel light and quick.",
        "No blisters, even on the very first 10k.",
        "Grip on wet pavement is excellent.",
        "They've survived 500 miles and still feel springy.",
        "True to size and roomy in the toe box.",
        "My knee pain has eased since I switched to these.",
        "The breathable upper kept my feet cool in the summer heat.",
        "Set a personal best in my first race wearing them.",
        "Comfortable straight out of the box, with no break-in period.",
        "They look sharp enough to wear casually too.",
    ],
    "restaurant": [
        "The pasta was clearly handmade and the sauce was rich and bright.",
        "Friendly staff, quick service, and very reasonable prices.",
        "Best ramen I've had outside Japan.",
        "They handled my nut allergy carefully and explained every dish.",
        "The dessert menu alone is worth the trip.",
        "Cosy atmosphere and a wine list with real bargains on it.",
        "Portions are huge; we took half of it home.",
        "Every plate arrived hot and beautifully presented.",
        "The tasting menu was creative without being pretentious.",
        "Our waiter's recommendations were spot on.",
    ],
    "laptop": [
        "Boots in seconds and the battery gets me through a full workday.",
        "The screen is bright and sharp, great for photo editing.",
        "The keyboard is a joy to type on.",
        "Runs cool and silent even with dozens of tabs open.",
        "Light enough to carry everywhere without thinking about it.",
        "Compiles my projects noticeably faster than my old desktop did.",
        "The trackpad is large and precise.",
        "Build quality feels solid, with no flex in the lid at all.",
        "Plenty of ports, so no dongles needed.",
        "The speakers are surprisingly good for a machine this thin.",
    ],
    "vacuum cleaner": [
        "Picks up dog hair from the carpet in a single pass.",
        "Being cordless means I actually vacuum more often.",
        "Suction is strong and the bin is easy to empty.",
        "Converts to a handheld for cleaning the car in seconds.",
        "Quieter than my old one; the cat doesn't even run away.",
        "One charge covers the whole flat with plenty to spare.",
        "The little headlight shows dust I didn't know was there.",
        "The robot maps the house neatly and never gets stuck under the sofa.",
        "The filters are washable, so there are no ongoing costs.",
        "Gets right into corners and along the skirting boards.",
    ],
    "board game": [
        "Easy to learn in ten minutes, but there's real strategy to it.",
        "It has been our family game night pick every week since.",
        "Gorgeous artwork and sturdy components.",
        "Works just as well with two players as with five.",
        "Every game plays out differently.",
        "The rulebook is clear, with helpful examples.",
        "Lots of laughter and a tense final round every time.",
        "Quick enough to play three rounds in an evening.",
        "Even my teenager put his phone down to play.",
        "The box insert keeps every piece neatly organised.",
    ],
}

NEGATIVE_BODIES = {
    "headphones": [
        "The left earcup started crackling after two weeks.",
        "The noise cancelling barely does anything on a plane.",
        "They pinch so hard I get a headache within an hour.",
        "Bluetooth keeps dropping whenever my phone is in my pocket.",
        "The sound is muddy and the bass is boomy and bloated.",
        "The box claims 30 hours of battery; I get about eight.",
        "The headband snapped at the hinge.",
        "The microphone makes me sound like I'm underwater.",
        "The touch controls trigger every time I adjust them.",
        "There's an audible hiss even with nothing playing.",
    ],
    "coffee maker": [
        "It leaks water all over the counter every time.",
        "Coffee comes out lukewarm no matter the setting.",
        "The plastic taste never went away, even after a dozen rinses.",
        "It stopped heating after three weeks.",
        "A loud grinding noise wakes the whole house.",
        "The carafe lid dribbles coffee down the side when you pour.",
        "Pods jam constantly and have to be pried out with a knife.",
        "The water tank is tiny, so I refill it for every cup.",
        "The display is unreadable unless you're standing right in front of it.",
        "Customer service ignored three emails about a cracked tank.",
    ],
    "novel": [
        "I gave up halfway; nothing happens for two hundred pages.",
        "The characters are flat and the dialogue is painfully stilted.",
        "The ending feels rushed, as if the author ran out of time.",
        "The e-book edition is full of typos and formatting errors.",
        "The twist is obvious from chapter two.",
        "Pretentious writing that confuses vagueness with depth.",
        "Far too long; whole subplots could have been cut.",
        "The narrator is so unpleasant I stopped caring what happened to him.",
        "It is nothing like the blurb promised.",
        "There are clichés on every page.",
    ],
    "film": [
        "Two hours of my life I won't get back.",
        "The plot makes no sense and the dialogue is wooden.",
        "The shaky camera work made me feel seasick.",
        "All the best jokes were in the trailer.",
        "The CGI looks cheap and unfinished.",
        "It drags terribly in the middle; half the audience was on their phones.",
        "A lazy remake that misses everything that made the original special.",
        "The sound mix buries the dialogue under the music.",
        "The ending undoes everything the story was building towards.",
        "I fell asleep twice.",
    ],
    "hotel": [
        "Stained sheets and a bathroom that clearly hadn't been cleaned.",
        "Street noise until 4 a.m., and the windows don't close properly.",
        "They charged us for a minibar we never touched.",
        "The room looked nothing like the photos online.",
        "The Wi-Fi only worked in the lobby.",
        "We waited forty minutes to check in while the staff chatted.",
        "The air conditioning rattled all night and couldn't be switched off.",
        "Breakfast was stale pastries and watery coffee.",
        "We found a cockroach in the shower.",
        "Hidden resort fees almost doubled the price.",
    ],
    "running shoes": [
        "The sole started peeling off after a month.",
        "They gave me blisters on both heels on the first run.",
        "They run at least a full size small.",
        "Slippery as ice on wet pavement.",
        "Way too stiff; my calves ached for days.",
        "The insole slides around inside the shoe.",
        "The stitching split along the side within a few weeks.",
        "Heavy and clunky, like running in hiking boots.",
        "The laces won't stay tied.",
        "My feet overheat in them after a couple of kilometres.",
    ],
    "restaurant": [
        "We waited an hour for cold food.",
        "The waiter was rude and got our order wrong twice.",
        "I asked for medium-rare and the steak came out grey and chewy.",
        "Tiny portions at outrageous prices.",
        "The tables were sticky and the floor was filthy.",
        "The soup was so salty it was inedible.",
        "We were rushed out before dessert because they wanted the table.",
        "Both of us felt ill the next day.",
        "They added a service charge and then still expected a tip.",
        "The music was so loud we couldn't hear each other.",
    ],
    "laptop": [
        "The fan screams under the lightest load.",
        "The battery barely lasts two hours.",
        "A line of dead pixels appeared on the screen in the first month.",
        "Several keys are already sticking.",
        "It came with so much bloatware that it took a day to clean up.",
        "It overheats and throttles whenever I join a video call.",
        "The hinge cracked with normal use.",
        "The trackpad is jumpy and registers phantom clicks.",
        "The charging port is loose, so it disconnects if you breathe on it.",
        "Support wanted me to pay for a repair on a week-old machine.",
    ],
    "vacuum cleaner": [
        "It loses suction after a few minutes.",
        "The battery died completely after six months.",
        "Hair wraps around the brush roll constantly.",
        "It's louder than a jet engine.",
        "The robot gets stuck on every rug and beeps for help.",
        "The bin is tiny and spills dust everywhere when you empty it.",
        "It pushes dirt around instead of picking it up.",
        "The attachments keep falling off.",
        "It smells like burning plastic after ten minutes of use.",
        "Far too heavy to carry upstairs.",
    ],
    "board game": [
        "The rules are a confusing mess.",
        "Pieces were missing straight out of the box.",
        "The first player almost always wins.",
        "Games drag on for three hours with lots of waiting around.",
        "The cardboard is flimsy and already bent.",
        "Fun once, then boring.",
        "Way too much luck; strategy barely matters.",
        "Setup takes longer than actually playing.",
        "Nobody in my group wanted a second game.",
        "Overpriced for what's in the box.",
    ],
}

# Neutral openers. Physical products share a set; the others get their own.
# "{it}"/"{one}" become "them"/"ones" for plural products.
_ITEM_OPENERS = [
    "Ordered after reading plenty of reviews.",
    "Been using {it} daily for about three weeks.",
    "Picked up on sale last month.",
    "A birthday present from my partner.",
    "An upgrade from a much cheaper model.",
    "Second week of use now.",
    "Bought to replace my old {one}.",
]
OPENERS = {
    **{p: _ITEM_OPENERS for p in
       ["headphones", "coffee maker", "running shoes", "laptop", "vacuum cleaner"]},
    "board game": [
        "Bought it for a rainy weekend.",
        "A Christmas present from my brother.",
        "Played it five times so far.",
        "Tried it at a game café first.",
    ],
    "novel": [
        "Picked this up on a friend's recommendation.",
        "Read it over a long weekend.",
        "Our book club pick this month.",
        "Listened to the audiobook version.",
    ],
    "film": [
        "Saw it on opening night.",
        "Watched it at home with friends.",
        "Caught a late showing.",
        "Streamed it last night.",
    ],
    "hotel": [
        "Stayed three nights in May.",
        "Weekend break with my partner.",
        "Business trip, two nights.",
        "Family holiday, one week.",
    ],
    "restaurant": [
        "Dinner for two on a Friday.",
        "Came here for a birthday lunch.",
        "Tried it after walking past for months.",
        "Work dinner for eight of us.",
    ],
}

# Closers; "{it}" becomes "them" for plural products.
_ITEM_POS = ["Would buy again.", "Highly recommend.", "Worth every penny.",
             "Five stars from me.", "Very happy with {it}.", "No regrets at all."]
_ITEM_NEG = ["Returned {it}.", "Save your money.", "Avoid.", "Very disappointed.",
             "Would not recommend.", "One star is generous."]
CLOSERS = {
    "positive": {
        **{p: _ITEM_POS for p in
           ["headphones", "coffee maker", "running shoes", "laptop", "vacuum cleaner", "board game"]},
        "novel": ["Can't wait for the sequel.", "Recommending it to everyone.", "Five stars."],
        "film": ["Go and see it.", "Already planning a second viewing.", "Loved it."],
        "hotel": ["We'll be back.", "Would stay again in a heartbeat.", "Highly recommended."],
        "restaurant": ["We'll be back.", "Book ahead, it's worth it.", "A new favourite."],
    },
    "negative": {
        **{p: _ITEM_NEG for p in
           ["headphones", "coffee maker", "running shoes", "laptop", "vacuum cleaner", "board game"]},
        "novel": ["Didn't finish it.", "Skip this one.", "Very disappointing."],
        "film": ["Skip it.", "Wait for streaming, or don't bother.", "Avoid."],
        "hotel": ["Never again.", "Stay anywhere else.", "Avoid."],
        "restaurant": ["Won't be back.", "Eat elsewhere.", "Avoid."],
    },
}

# ---------------------------------------------------------------------------
# Standalone reviews: (product, text). Unicode, other languages, quoting.
# ---------------------------------------------------------------------------

LONG_POSITIVE = """\
We booked four nights at this hotel for our tenth anniversary, and I want to write a proper review because the small details made the trip. We arrived hours before check-in after an overnight flight, fully expecting to sit in the lobby with our bags. Instead, the woman at the front desk took one look at us, offered coffee, and found a room that was ready early. It was on a high floor, facing the harbour, with a balcony big enough for two chairs and a little table.

The room itself was spotless. The bed was firm without being hard, the pillows were plentiful, and the blackout curtains actually blacked things out, which matters when you are fighting jet lag. The bathroom had a deep tub, a rainfall shower with excellent pressure, and toiletries that smelled of rosemary rather than cheap perfume. Housekeeping came every afternoon, quietly, and never moved our things around.

Breakfast deserves its own paragraph. There was fresh fruit, local cheeses, good bread, eggs cooked to order, and pastries that were clearly baked in-house that morning. The coffee was strong and the staff refilled it before we asked. On our anniversary they brought out a small cake with a candle, even though I had only mentioned the occasion in passing when booking.

The location is ideal. The old town is a ten-minute walk, the ferry terminal is around the corner, and there are several excellent restaurants on the same street. The concierge, Marco, gave us a hand-drawn map of his favourite places, and every single recommendation was a winner, from a tiny seafood bar to a bakery that sold the best almond biscuits I have ever eaten.

If I had to find a fault, the lift was a little slow at peak times, but honestly that is nitpicking. This was one of the best hotel stays we have ever had, and we are already planning to return next year."""

LONG_NEGATIVE = """\
I rarely write reviews, but I feel I owe other buyers a warning about this laptop. I bought it for university work, attracted by the slim design, the promised fourteen-hour battery and the glowing launch coverage. Within the first week it became obvious that the marketing and the reality have very little in common.

The battery is the biggest disappointment. With the screen at half brightness, Wi-Fi on and nothing more demanding than a word processor and a browser, I get about four hours. A video call drains it in under two. The charger, meanwhile, has to be held at a slight angle or it disconnects, so charging in a lecture hall is an exercise in patience.

Performance is no better. The fan spins up loudly whenever I open more than a handful of tabs, and the bottom of the case gets hot enough that I cannot use it on my lap. Several times a week the machine freezes for ten or fifteen seconds, then carries on as though nothing happened. Twice it has crashed outright and lost unsaved work, including part of an essay due the next morning.

The build quality does not match the price either. The keyboard flexes in the middle, two keys already stick, and a faint line of dead pixels appeared down the right-hand side of the display after a month. The trackpad occasionally registers clicks that I never made, which is as maddening as it sounds.

I contacted support expecting a quick replacement. Instead I spent three weeks being passed between departments, was asked to reinstall the operating system twice, and was finally told that the screen fault was "cosmetic" and not covered. When I pushed back, they offered a paid repair.

I have since bought a cheaper machine from a different brand, and it is better in every way that matters. Avoid this one, whatever the reviews at launch said."""

POSITIVE_STANDALONE = [
    ("restaurant", "The crème brûlée was perfect — crackly top, silky custard. Our waiter, Zoë, was an absolute star."),
    ("headphones", "Love these!! 🎧🔥 Best purchase of the year."),
    ("hotel", "Hôtel charmant, personnel très accueillant et petit-déjeuner délicieux. Je recommande vivement !"),
    ("coffee maker", "Die Kaffeemaschine ist leise, schnell und der Kaffee schmeckt hervorragend. Klare Kaufempfehlung!"),
    ("film", "¡Qué película tan bonita! Me reí, lloré y salí del cine con una sonrisa enorme."),
    ("novel", "最後まで一気に読んでしまいました。登場人物がみんな魅力的で、本当に素晴らしい小説です。"),
    ("laptop", "这台笔记本电脑速度很快，屏幕清晰，电池也很耐用。非常满意！"),
    ("novel", "As the author puts it, “some doors only open from the inside” — and this book opened a few for me."),
    ("running shoes", "Light, springy, and grippy. I've run in Nike, Asics, and Brooks, and these beat all of them."),
    ("board game", "My daughter's verdict: \"better than video games.\" High praise indeed."),
    ("hotel", "Lovely stay.\nRoom was spotless.\nStaff were kind.\nWe'll be back next summer."),
    ("restaurant", "Ate here twice in one week 😋 The dumplings are unreal."),
    ("coffee maker", "Café-quality lattes at home, finally. My latte art is still naïve, but the machine makes up for it."),
    ("film", "Saw it twice in cinemas. Ten out of ten, no notes ⭐⭐⭐⭐⭐"),
    ("vacuum cleaner", "Five stars. The \"turbo\" mode isn't a gimmick, it actually deep-cleans the rugs."),
    ("laptop", "Switched from a much pricier brand and honestly don't miss it. Fast, quiet, great screen."),
    ("headphones", "Ces écouteurs ont un son incroyable et la réduction de bruit est top. 👍"),
    ("board game", "Ein tolles Spiel für die ganze Familie – schnell erklärt und jedes Mal spannend."),
    ("hotel", "El hotel estaba impecable y el personal fue amabilísimo. Volveremos sin duda."),
    ("restaurant", "料理はどれも美味しく、店員さんもとても親切でした。また行きたいです！"),
    ("film", "剧情紧凑，演员表演出色，是今年看过最好的电影。"),
    ("novel", "Couldn't put it down. Then I bought copies for my mum, my sister, and my neighbour."),
    ("running shoes", "Marathon done in these, zero blisters, zero regrets 🏃‍♀️"),
    ("vacuum cleaner", "I didn't expect to be excited about a vacuum, yet here we are. It's brilliant."),
    ("coffee maker", "Quick tip: use filtered water. Result: the best cup of coffee I've ever made at home, hands down."),
    ("hotel", "Tiny boutique place in Kraków with a view over the square — magical at night."),
    ("laptop", "Pros:\n- fast\n- quiet\n- all-day battery\nCons:\n- honestly none so far"),
    ("board game", "Brilliant two-player game. \"Just one more round\" has become a household phrase."),
    ("restaurant", "Small menu, but every dish was perfect, from the olives to the tiramisù."),
    ("film", "Wonderful. Just wonderful. See it on the big screen."),
    ("headphones", "Totally worth it, no complaints whatsoever."),
    ("novel", "A debut this assured is rare — I'll read whatever she writes next."),
    ("vacuum cleaner", "Our flat has never been cleaner, and the robot's little “I'm done!” chime makes me smile."),
    ("running shoes", "Wide fit, finally! My feet thank you."),
    ("coffee maker", "10/10, makes mornings bearable again ☕"),
    ("laptop", "I'm a developer; builds are 3× faster than on my old machine, and it's silent."),
    ("hotel", "The front desk went above & beyond when our flight was cancelled: a late checkout, a taxi, and even a packed breakfast."),
    ("board game", "Bought it on a whim, played it 40 times since. Yes, forty."),
    ("film", "My French friend called it «magnifique», and for once I completely agree."),
    ("hotel", LONG_POSITIVE),
]

NEGATIVE_STANDALONE = [
    ("restaurant", "Worst meal I've had in years. Cold fries, soggy burger, and a 45-minute wait 😡"),
    ("hotel", "Chambre sale, personnel désagréable et bruit toute la nuit. À éviter."),
    ("laptop", "Nach zwei Wochen ging der Akku kaputt, und der Kundendienst reagiert nicht. Sehr enttäuschend."),
    ("headphones", "Se rompieron al mes de uso y el sonido es malísimo. No los recomiendo."),
    ("coffee maker", "三日で壊れました。お湯がぬるくて、コーヒーがまずいです。"),
    ("vacuum cleaner", "吸力很弱，噪音很大，用了一周就坏了。不推荐。"),
    ("film", "They called it “the thriller of the decade.” It isn't even the thriller of the week."),
    ("novel", "The blurb says \"unputdownable\". I put it down after forty pages, and I'm not picking it back up."),
    ("running shoes", "Sole peeled off, laces frayed, and my heel is still raw. Terrible."),
    ("board game", "Rules unclear.\nPieces missing.\nBox crushed on arrival.\nReturned."),
    ("hotel", "Booked a \"deluxe\" room, got a broom cupboard next to the lift — and no apology."),
    ("coffee maker", "Dead after 3 weeks 💀 Don't waste your money."),
    ("film", "Boring, predictable, and far too long. I checked my watch every ten minutes."),
    ("laptop", "Screen flickers, fans roar, and the keyboard rattles. An absolute lemon."),
    ("restaurant", "Die Bedienung war unfreundlich und das Essen kalt. Nie wieder!"),
    ("novel", "Un roman ennuyeux, des personnages sans intérêt. Je me suis forcé à le finir."),
    ("hotel", "La habitación olía a humedad y el aire acondicionado no funcionaba. Una decepción total."),
    ("film", "期待していたのに、ストーリーが退屈で途中で寝てしまいました。"),
    ("headphones", "音质很差，戴久了耳朵疼，蓝牙还经常断开。"),
    ("vacuum cleaner", "The so-called “self-emptying” base empties itself all over the floor."),
    ("running shoes", "Returned them after one run. My feet, my knees, and my wallet all hurt."),
    ("board game", "Two hours of rules explanation, twenty minutes of play, zero fun. 👎"),
    ("coffee maker", "The descaling light stays on no matter what. I've descaled it five times. FIVE."),
    ("restaurant", "Charged €18 for a tiny salad that was mostly wilted lettuce."),
    ("laptop", "Arrived with a dented corner. The replacement had the same dent — impressive, in the worst way."),
    ("hotel", "Photos online: sunny terrace, sparkling pool. Reality: building site, drained pool, and a jackhammer at 7 a.m."),
    ("novel", "Padded, preachy, and somehow both too long and unfinished."),
    ("film", "The director's cut is even worse, which I didn't think was possible."),
    ("headphones", "They sound fine for exactly ten minutes before the left side cuts out. Every. Single. Time."),
    ("running shoes", "Size 42 felt like a 40. Had to send them back, and the refund took six weeks."),
    ("vacuum cleaner", "The filter clogs after one room; I spend more time cleaning the vacuum than the floor."),
    ("board game", "Looks gorgeous on the shelf, which is the only place it's going to stay."),
    ("restaurant", "When I pointed out the hair in my soup, the waiter said, \"That's how the chef makes it.\""),
    ("coffee maker", "Pros: none.\nCons: leaks, loud, and everything tastes burnt."),
    ("laptop", "Total waste of money, avoid ❌"),
    ("film", "Sat through the whole thing out of stubbornness. Not recommended."),
    ("hotel", "Overpriced, understaffed, and under renovation — nobody mentioned that when we booked."),
    ("headphones", "Returned within a day. Cheap plastic, creaky hinges, tinny sound."),
    ("novel", "Ich habe selten ein so langweiliges Buch gelesen. Schade um die Zeit."),
    ("laptop", LONG_NEGATIVE),
]

MIXED = [
    ("headphones", "Great sound, but they get uncomfortable after an hour."),
    ("coffee maker", "The coffee tastes excellent, though the machine is a nightmare to clean."),
    ("novel", "A brilliant first half, then it loses its way completely."),
    ("film", "Stunning visuals, shame about the paper-thin plot."),
    ("hotel", "Lovely staff and location, but the room was tiny and the walls were thin."),
    ("running shoes", "Super comfortable, but they wore out after only 200 miles."),
    ("restaurant", "The food was delicious; the service was painfully slow."),
    ("laptop", "Fast and beautifully built, but the battery life is disappointing."),
    ("vacuum cleaner", "Strong suction, but the battery only lasts fifteen minutes."),
    ("board game", "Fun with four players, tedious with two."),
    ("hotel", "Belle vue sur la mer, mais le petit-déjeuner était médiocre et cher."),
    ("film", "Die Schauspieler sind großartig, aber die Handlung ist viel zu vorhersehbar."),
    ("restaurant", "La comida estaba riquísima, pero tardaron casi una hora en atendernos."),
    ("headphones", "音はとても良いですが、ケースが大きすぎて持ち運びに不便です。"),
    ("coffee maker", "咖啡味道不错，但是机器声音太大了。"),
    ("novel", "Loved the characters, hated the ending 🤷"),
    ("laptop", "Gorgeous screen — shame about the keyboard, which feels mushy."),
    ("vacuum cleaner", "Works well on hard floors, struggles on thick carpet."),
    ("running shoes", "They look great, feel OK, and cost far too much."),
    ("board game", "Beautiful components, but the rules need a second read. We got there eventually."),
    ("hotel", "Pros: location, breakfast.\nCons: noise, tiny bathroom.\nMight stay again if the price were right."),
    ("film", "Not the \"masterpiece\" the critics promised, but a decent Friday night watch."),
    ("restaurant", "Mains were excellent, desserts forgettable, wine overpriced."),
    ("coffee maker", "It does the job. Nothing special, nothing terrible."),
    ("novel", "Some chapters are beautiful; others read like a first draft."),
    ("laptop", "Fine for email and browsing, but don't expect to game on it."),
    ("headphones", "Comfy and stylish, yet the mic is pretty poor on calls."),
    ("film", "The first hour is gripping — the second, not so much."),
    ("vacuum cleaner", "Happy with how it cleans, unhappy with how loud it is 😬"),
    ("board game", "My kids love it; I find it mind-numbing after the third round."),
]

# Rows with nothing to judge: three null texts and three empty strings.
EMPTY = [
    ("film", None),
    ("coffee maker", None),
    ("hotel", None),
    ("novel", ""),
    ("laptop", ""),
    ("restaurant", ""),
]

MIN_COMPOSED_WORDS = 5
MAX_COMPOSED_WORDS = 40


def compose(rng: random.Random, product: str, sentiment: str, bodies: list[str]) -> str:
    """Join an optional opener, the body sentence(s) and an optional closer."""
    it = "them" if product in PLURAL else "it"
    opener = rng.choice(OPENERS[product]).format(it=it, one="ones" if product in PLURAL else "one")
    closer = rng.choice(CLOSERS[sentiment][product]).format(it=it)
    parts: list[str] = []
    if rng.random() < 0.45:
        parts.append(opener)
    parts.extend(bodies)
    if rng.random() < 0.55 or len(" ".join(parts).split()) < MIN_COMPOSED_WORDS:
        parts.append(closer)
    text = " ".join(parts)
    if len(text.split()) > MAX_COMPOSED_WORDS:
        text = " ".join(bodies)
    return text


def composed_rows(rng: random.Random, sentiment: str, table: dict[str, list[str]]) -> list[tuple]:
    """Use every body sentence once: per product, one row with two sentences
    and the rest with one (ten sentences -> nine rows)."""
    rows = []
    for product in PRODUCTS:
        bodies = list(table[product])
        rng.shuffle(bodies)
        groups = [bodies[:2]] + [[b] for b in bodies[2:]]
        for group in groups:
            rows.append((product, compose(rng, product, sentiment, group), sentiment))
    return rows


def build_rows() -> list[tuple]:
    rng = random.Random(SEED)
    rows: list[tuple] = []
    rows += composed_rows(rng, "positive", POSITIVE_BODIES)
    rows += composed_rows(rng, "negative", NEGATIVE_BODIES)
    rows += [(p, t, "positive") for p, t in POSITIVE_STANDALONE]
    rows += [(p, t, "negative") for p, t in NEGATIVE_STANDALONE]
    rows += [(p, t, "mixed") for p, t in MIXED]
    rows += [(p, t, "none") for p, t in EMPTY]
    rng.shuffle(rows)
    return rows


SCHEMA = pa.schema(
    [
        pa.field("review_id", pa.int64(), nullable=False),
        pa.field("product", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=True),
        pa.field("expected", pa.string(), nullable=False),
    ]
)


def main() -> None:
    rows = build_rows()
    texts = [t for _, t, _ in rows]
    if len(set(t for t in texts if t)) != sum(1 for t in texts if t):
        raise SystemExit("duplicate review text generated")
    table = pa.table(
        {
            "review_id": list(range(1, len(rows) + 1)),
            "product": [p for p, _, _ in rows],
            "text": texts,
            "expected": [e for _, _, e in rows],
        },
        schema=SCHEMA,
    )
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, OUT_DIR / "reviews.parquet", compression="zstd")
    # polars writes null as an empty unquoted field and "" as a quoted "",
    # and quotes any field containing a comma, quote or newline.
    pl.from_arrow(table).write_csv(OUT_DIR / "reviews.csv")

    counts: dict[str, int] = {}
    for _, _, e in rows:
        counts[e] = counts.get(e, 0) + 1
    print(f"wrote {len(rows)} rows to {OUT_DIR}: "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
