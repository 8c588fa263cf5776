//! The social-prescribing needs the demo covers, and the many kinds of thing a real
//! directory holds under each. Each activity knows how it is usually named, described,
//! timed and charged for, so generated services read like real listings.

/// How people take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    InPerson,
    Online,
    Phone,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::InPerson => "in person",
            Mode::Online => "online",
            Mode::Phone => "phone",
        }
    }
}

#[derive(Debug)]
pub struct Activity {
    pub code: &'static str,
    pub name: &'static str,
    /// Service names; `{place}` becomes the neighbourhood.
    pub titles: &'static [&'static str],
    pub about: &'static str,
    /// Pounds per session; 0 is free.
    pub cost: u32,
    pub min_age: Option<u8>,
    pub max_age: Option<u8>,
    /// Usual day (RFC 5545 two-letter) and hours.
    pub day: &'static str,
    pub opens: u32,
    pub closes: u32,
    pub mode: Mode,
    /// Other needs this activity also meets, by code.
    pub also: &'static [&'static str],
}

#[derive(Debug)]
pub struct Need {
    pub code: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub activities: &'static [Activity],
}

macro_rules! activity {
    ($code:literal, $name:literal, [$($t:literal),+], $about:literal, cost $cost:literal, ages $min:expr, $max:expr, $day:literal $open:literal-$close:literal, $mode:ident, also [$($also:literal),*]) => {
        Activity {
            code: $code,
            name: $name,
            titles: &[$($t),+],
            about: $about,
            cost: $cost,
            min_age: $min,
            max_age: $max,
            day: $day,
            opens: $open,
            closes: $close,
            mode: Mode::$mode,
            also: &[$($also),*],
        }
    };
}

pub static NEEDS: &[Need] = &[
    Need {
        code: "loneliness",
        name: "Loneliness and social isolation",
        description: "Company, friendship and a reason to get out of the house",
        activities: &[
            activity!("befriending", "Befriending", ["{place} Befriending Service", "Good Neighbours {place}"], "A trained volunteer visits or phones every week for a chat, so nobody has to feel alone.", cost 0, ages Some(18), None, "WE" 10-16, InPerson, also ["older-people"]),
            activity!("lunch-club", "Lunch clubs", ["{place} Lunch Club", "Friendship Lunch at {place}"], "A hot two-course lunch and good company, with transport for those who need it.", cost 4, ages Some(55), None, "TH" 12-14, InPerson, also ["older-people", "food"]),
            activity!("social-group", "Social groups", ["{place} Friendship Group", "Coffee and Chat {place}", "Blether Group {place}"], "A relaxed drop-in for tea, coffee, games and conversation. Come on your own; you will be made welcome.", cost 0, ages Some(18), None, "TU" 10-12, InPerson, also []),
            activity!("mens-shed", "Men's sheds", ["{place} Men's Shed"], "A workshop where men (and anyone else) make, mend and talk shoulder to shoulder.", cost 0, ages Some(18), None, "MO,TH" 10-15, InPerson, also ["crafts"]),
            activity!("telephone-friendship", "Telephone friendship", ["{area} Telephone Friendship Line"], "A friendly call at a time that suits you, every week, from the same volunteer.", cost 0, ages Some(60), None, "MO,TU,WE,TH,FR" 9-17, Phone, also ["older-people"]),
        ],
    },
    Need {
        code: "physical-activity",
        name: "Physical activity",
        description: "Moving more, at any pace and any age",
        activities: &[
            activity!("walking-group", "Walking groups", ["{place} Health Walk", "{place} Walking Group", "Walk and Talk {place}"], "A gentle, led walk of about an hour on paths suitable for beginners, finishing with a cuppa.", cost 0, ages None, None, "WE" 10-11, InPerson, also ["loneliness", "nature"]),
            activity!("chair-exercise", "Chair-based exercise", ["Chair-Based Exercise at {place}", "Seated Strength and Balance {place}"], "Seated exercise to music to build strength and balance and reduce falls. No experience needed.", cost 2, ages Some(60), None, "TU" 11-12, InPerson, also ["older-people"]),
            activity!("swimming", "Swimming", ["Aqua Fit {place}", "Over 50s Swim at {place} Leisure Centre"], "Relaxed swimming sessions with a lifeguard and an instructor on hand.", cost 3, ages Some(50), None, "FR" 9-10, InPerson, also []),
            activity!("football", "Football", ["{place} Walking Football", "{place} Recovery Football"], "Friendly football at walking pace: no running, no tackling, lots of laughs.", cost 2, ages Some(40), None, "MO" 18-19, InPerson, also ["mental-health"]),
            activity!("dance", "Dance", ["Tea Dance at {place}", "{place} Dance for Health"], "Dancing for fun and fitness to music from every decade. Partners not needed.", cost 3, ages None, None, "TH" 14-16, InPerson, also ["music", "loneliness"]),
            activity!("yoga", "Yoga and tai chi", ["Gentle Yoga {place}", "Tai Chi for Health {place}"], "Slow, mindful movement and breathing that eases stiffness and stress.", cost 4, ages Some(16), None, "WE" 18-19, InPerson, also ["mental-health"]),
            activity!("parkrun", "Running", ["{place} Couch to 5K", "{place} Running Club"], "A supportive beginners' running group that builds up from a walk to 5 km over nine weeks.", cost 0, ages Some(16), None, "SA" 9-10, InPerson, also []),
            activity!("cycling", "Cycling", ["{place} Community Bike Rides", "Bike Library {place}"], "Borrow a bike and join a led ride on quiet routes, with basic maintenance taught along the way.", cost 0, ages Some(12), None, "SU" 10-12, InPerson, also ["nature"]),
        ],
    },
    Need {
        code: "mental-health",
        name: "Mental health and wellbeing",
        description: "Support for low mood, anxiety and stress",
        activities: &[
            activity!("peer-support", "Peer support groups", ["{place} Wellbeing Peer Support", "Men's Mental Health Group {place}"], "A confidential group run by people with lived experience. Share as much or as little as you like.", cost 0, ages Some(18), None, "TU" 18-20, InPerson, also ["loneliness"]),
            activity!("counselling", "Counselling", ["{area} Community Counselling", "Low-Cost Counselling {place}"], "Six to twelve sessions with a qualified counsellor. Self-referral welcome.", cost 0, ages Some(16), None, "MO,TU,WE,TH,FR" 9-17, InPerson, also []),
            activity!("helpline", "Helplines", ["{area} Listening Line", "Breathing Space (serving {area})"], "Someone to talk to when things feel too much, in confidence.", cost 0, ages Some(16), None, "MO,TU,WE,TH,FR,SA,SU" 18-23, Phone, also []),
            activity!("mindfulness", "Mindfulness and stress", ["Mindfulness Course {place}", "Stress Control {area}"], "A six-week course of practical skills for coping with stress, anxiety and low mood.", cost 0, ages Some(16), None, "WE" 13-15, Online, also []),
        ],
    },
    Need {
        code: "money",
        name: "Money and debt",
        description: "Benefits, debt, bills and the cost of living",
        activities: &[
            activity!("benefits-advice", "Benefits advice", ["{place} Welfare Rights", "Benefits Check at {place} Library"], "Free, confidential help to check you get every benefit you are entitled to and to fill in the forms.", cost 0, ages Some(16), None, "MO,WE" 10-16, InPerson, also []),
            activity!("debt-advice", "Debt advice", ["{area} Debt Advice", "Money Worries Drop-in {place}"], "Free, impartial debt advice: a plan to deal with what you owe, and help talking to creditors.", cost 0, ages Some(18), None, "TU,TH" 9-17, InPerson, also ["mental-health"]),
            activity!("energy-advice", "Energy and bills", ["{place} Warm Homes Advice", "Energy Advice Surgery {place}"], "Help with fuel debt, meter problems, grants and keeping warm for less.", cost 0, ages Some(18), None, "TH" 10-13, InPerson, also ["housing"]),
            activity!("credit-union", "Credit unions", ["{area} Credit Union ({place} branch)"], "Save a little and borrow fairly at a not-for-profit credit union owned by its members.", cost 0, ages Some(16), None, "FR" 10-14, InPerson, also []),
        ],
    },
    Need {
        code: "housing",
        name: "Housing",
        description: "Somewhere safe and warm to live",
        activities: &[
            activity!("housing-advice", "Housing advice", ["{area} Housing Advice", "Tenants' Advice {place}"], "Help with rent arrears, repairs, eviction notices and finding a home.", cost 0, ages Some(16), None, "MO,TU,WE,TH" 9-17, InPerson, also []),
            activity!("homelessness", "Homelessness support", ["{area} Homelessness Drop-in"], "Practical help if you are homeless or at risk: a shower, a meal, and help to find a place to stay.", cost 0, ages Some(16), None, "MO,TU,WE,TH,FR" 9-12, InPerson, also ["food"]),
            activity!("home-adaptations", "Home adaptations", ["{area} Care and Repair"], "Small repairs and adaptations, such as grab rails and key safes, so you can stay safe at home.", cost 0, ages Some(60), None, "MO,TU,WE,TH,FR" 9-16, Phone, also ["older-people"]),
        ],
    },
    Need {
        code: "food",
        name: "Food",
        description: "Enough to eat, and cooking on a budget",
        activities: &[
            activity!("food-bank", "Food banks", ["{place} Food Bank", "{place} Community Pantry"], "Emergency food parcels, and a pantry where members choose their own food for a small weekly fee.", cost 0, ages None, None, "TU,FR" 12-15, InPerson, also ["money"]),
            activity!("community-meal", "Community meals", ["{place} Community Cafe", "Pay-What-You-Can Supper {place}"], "A hot meal in good company. Pay what you can, or nothing at all.", cost 0, ages None, None, "WE" 17-19, InPerson, also ["loneliness"]),
            activity!("cooking", "Cooking skills", ["Cook and Eat {place}", "Cooking on a Budget {place}"], "Learn to cook tasty, healthy meals for less, and take home what you make.", cost 0, ages Some(16), None, "TH" 10-12, InPerson, also ["learning"]),
        ],
    },
    Need {
        code: "carers",
        name: "Carers",
        description: "Support for people looking after someone",
        activities: &[
            activity!("carers-support", "Carers' support", ["{area} Carers Centre", "{place} Carers' Cafe"], "Information, a listening ear and time for yourself if you look after a family member or friend.", cost 0, ages Some(16), None, "TU" 10-12, InPerson, also ["mental-health"]),
            activity!("young-carers", "Young carers", ["{area} Young Carers"], "Breaks, fun activities and support at school for children who care for someone at home.", cost 0, ages Some(8), Some(18), "WE" 16-18, InPerson, also ["parenting"]),
            activity!("respite", "Short breaks", ["{area} Short Breaks for Carers"], "A sitter at home or a short break, so you can rest knowing the person you care for is safe.", cost 0, ages Some(18), None, "MO,TU,WE,TH,FR" 9-17, Phone, also []),
        ],
    },
    Need {
        code: "employment",
        name: "Employment",
        description: "Getting into work, and staying there",
        activities: &[
            activity!("job-club", "Job clubs", ["{place} Job Club", "Work Ready {place}"], "Help with CVs, job searches and applications, with computers and a friendly adviser.", cost 0, ages Some(16), None, "MO" 10-13, InPerson, also ["learning"]),
            activity!("volunteering", "Volunteering", ["Volunteer {area}", "{place} Volunteering Drop-in"], "Find a volunteering role that suits you, build confidence and meet people.", cost 0, ages Some(14), None, "TH" 13-16, InPerson, also ["loneliness"]),
            activity!("employability", "Employability support", ["{area} Employability Service"], "One-to-one support to move towards work at your own pace, including training and in-work help.", cost 0, ages Some(16), Some(67), "MO,TU,WE,TH,FR" 9-17, InPerson, also []),
        ],
    },
    Need {
        code: "arts",
        name: "Arts and creativity",
        description: "Making things, and enjoying arts and culture",
        activities: &[
            activity!("art-class", "Art classes", ["{place} Art Group", "Drawing for Wellbeing {place}"], "Paint and draw in a relaxed group. Materials provided; no experience needed.", cost 3, ages Some(16), None, "WE" 13-15, InPerson, also ["mental-health"]),
            activity!("creative-writing", "Creative writing", ["{place} Writers' Group", "Write Away {place}"], "Write stories, poems and memories together, with gentle feedback.", cost 0, ages Some(16), None, "MO" 18-20, InPerson, also []),
            activity!("photography", "Photography", ["{place} Photo Walk"], "Explore your neighbourhood with a camera or phone and learn to take better pictures.", cost 0, ages Some(12), None, "SA" 11-13, InPerson, also ["nature"]),
            activity!("drama", "Drama", ["{place} Community Theatre"], "Acting games, improvisation and a show at the end of term. All welcome.", cost 2, ages Some(14), None, "TU" 19-21, InPerson, also []),
        ],
    },
    Need {
        code: "music",
        name: "Music",
        description: "Singing and playing together",
        activities: &[
            activity!("community-choir", "Choirs", ["{place} Community Choir", "Singing for Wellbeing {place}"], "A friendly choir with no auditions and no need to read music. Just come and sing.", cost 2, ages None, None, "TH" 19-21, InPerson, also ["loneliness"]),
            activity!("singing-lungs", "Singing for lung health", ["Singing for Breathing {place}"], "Singing exercises that help people with COPD and other lung conditions breathe more easily.", cost 0, ages Some(18), None, "FR" 11-12, InPerson, also []),
            activity!("music-making", "Music making", ["{place} Ukulele Group", "{place} Drumming Circle", "Play Along {place}"], "Learn an instrument from scratch with others. Instruments can be borrowed.", cost 2, ages Some(10), None, "MO" 18-19, InPerson, also []),
        ],
    },
    Need {
        code: "crafts",
        name: "Crafts",
        description: "Making and mending by hand",
        activities: &[
            activity!("knitting", "Knitting and sewing", ["Knit and Natter {place}", "{place} Sewing Bee"], "Knit, crochet, sew and chat. Bring a project or start one with our spare wool.", cost 0, ages Some(16), None, "TU" 13-15, InPerson, also ["loneliness"]),
            activity!("woodwork", "Woodwork", ["{place} Woodwork Workshop"], "Learn to use hand and power tools safely and make something for your home.", cost 2, ages Some(18), None, "SA" 10-13, InPerson, also []),
            activity!("repair-cafe", "Repair cafes", ["{place} Repair Cafe"], "Bring broken things and fix them with volunteer menders, over tea and cake.", cost 0, ages None, None, "SA" 10-13, InPerson, also ["money"]),
        ],
    },
    Need {
        code: "nature",
        name: "Nature and gardening",
        description: "Time outdoors and growing things",
        activities: &[
            activity!("community-garden", "Community gardens", ["{place} Community Garden", "{place} Growing Space"], "Grow fruit and vegetables with others, share the harvest, and learn as you go.", cost 0, ages None, None, "WE,SA" 10-13, InPerson, also ["food", "physical-activity"]),
            activity!("conservation", "Conservation volunteering", ["Green Gym {place}", "Friends of {place} Park"], "Outdoor conservation tasks in local green spaces: fresh air, exercise and good company.", cost 0, ages Some(16), None, "TH" 10-14, InPerson, also ["physical-activity"]),
            activity!("allotment", "Allotments", ["{place} Therapeutic Allotment"], "A supported allotment for people recovering from illness or stress.", cost 0, ages Some(18), None, "TU" 10-14, InPerson, also ["mental-health"]),
        ],
    },
    Need {
        code: "learning",
        name: "Learning",
        description: "Skills, confidence and qualifications at any age",
        activities: &[
            activity!("esol", "English for speakers of other languages", ["ESOL Conversation Class {place}", "English Cafe {place}"], "Practise speaking English in a friendly group. All levels welcome; creche available.", cost 0, ages Some(16), None, "TU,TH" 10-12, InPerson, also []),
            activity!("digital-skills", "Digital skills", ["Get Online {place}", "Digital Drop-in at {place} Library"], "One-to-one help with phones, tablets, email, video calls and staying safe online.", cost 0, ages Some(16), None, "FR" 10-12, InPerson, also ["older-people"]),
            activity!("adult-literacy", "Reading, writing and numbers", ["{place} Adult Learning"], "Build confidence with reading, writing and everyday maths, in small friendly groups.", cost 0, ages Some(16), None, "WE" 13-15, InPerson, also []),
            activity!("community-courses", "Community courses", ["{area} Community Learning"], "Free short courses from first aid to family history, near you and online.", cost 0, ages Some(16), None, "MO" 18-20, Online, also []),
        ],
    },
    Need {
        code: "bereavement",
        name: "Bereavement",
        description: "Support after someone dies",
        activities: &[
            activity!("bereavement-group", "Bereavement groups", ["{place} Bereavement Cafe", "Walking Through Grief {place}"], "A gentle space to talk with others who understand, at your own pace.", cost 0, ages Some(18), None, "WE" 14-16, InPerson, also ["mental-health", "loneliness"]),
            activity!("bereavement-counselling", "Bereavement counselling", ["{area} Bereavement Support"], "One-to-one support from a trained volunteer after the death of someone close.", cost 0, ages Some(18), None, "MO,TU,WE,TH,FR" 9-17, Phone, also []),
        ],
    },
    Need {
        code: "addiction",
        name: "Alcohol and drugs",
        description: "Support to cut down, stop and stay well",
        activities: &[
            activity!("recovery-cafe", "Recovery cafes", ["{place} Recovery Cafe", "{place} Recovery Community"], "Peer support for anyone in recovery from alcohol or drugs, and their families.", cost 0, ages Some(18), None, "SA" 12-15, InPerson, also ["mental-health"]),
            activity!("mutual-aid", "Mutual aid meetings", ["{place} SMART Recovery Meeting", "{place} AA Open Meeting"], "A free mutual-aid meeting. Anyone who wants to change their drinking or drug use is welcome.", cost 0, ages Some(18), None, "TU" 19-20, InPerson, also []),
            activity!("family-support", "Support for families", ["{area} Family Support (alcohol and drugs)"], "Support for people affected by a loved one's drinking or drug use.", cost 0, ages Some(16), None, "TH" 18-20, InPerson, also ["carers"]),
        ],
    },
    Need {
        code: "parenting",
        name: "Parenting and early years",
        description: "Support for families with young children",
        activities: &[
            activity!("toddler-group", "Parent and toddler groups", ["{place} Stay and Play", "{place} Bumps and Babies"], "Play, songs and a cuppa for parents, carers and children under five.", cost 1, ages None, None, "WE" 10-12, InPerson, also ["loneliness"]),
            activity!("home-visiting", "Home visiting", ["Home-Start {area}"], "A trained volunteer visits families with young children who are finding things tough.", cost 0, ages Some(16), None, "MO,TU,WE,TH,FR" 9-17, InPerson, also ["mental-health"]),
            activity!("breastfeeding", "Breastfeeding support", ["{place} Breastfeeding Group"], "Friendly support and information from trained peer supporters.", cost 0, ages None, None, "TH" 13-15, InPerson, also []),
            activity!("parenting-course", "Parenting courses", ["Incredible Years {area}", "Parenting Together {place}"], "A free course for parents on play, praise, boundaries and calmer days.", cost 0, ages Some(16), None, "MO" 10-12, InPerson, also ["learning"]),
        ],
    },
    Need {
        code: "dementia",
        name: "Dementia",
        description: "Living well with dementia, and support for carers",
        activities: &[
            activity!("memory-cafe", "Memory cafes", ["{place} Memory Cafe", "Dementia Cafe {place}"], "A welcoming cafe for people living with dementia and those who care for them.", cost 0, ages None, None, "TH" 14-16, InPerson, also ["older-people", "carers"]),
            activity!("dementia-singing", "Singing for the brain", ["Singing for the Brain {place}"], "Singing familiar songs together to lift the mood and spark memories.", cost 0, ages None, None, "MO" 14-15, InPerson, also ["music"]),
            activity!("dementia-advice", "Dementia advice", ["{area} Dementia Advice Service"], "Advice after a diagnosis, and a named adviser to call when you need one.", cost 0, ages None, None, "MO,TU,WE,TH,FR" 9-17, Phone, also []),
        ],
    },
    Need {
        code: "older-people",
        name: "Older people",
        description: "Staying independent, active and connected in later life",
        activities: &[
            activity!("day-centre", "Day centres", ["{place} Day Centre", "{place} Over 60s Club"], "Activities, lunch and company, with transport for those who need it.", cost 5, ages Some(60), None, "MO,WE,FR" 10-15, InPerson, also ["loneliness"]),
            activity!("falls-prevention", "Falls prevention", ["Steady Steps {place}"], "A strength and balance course that helps prevent falls, with an instructor.", cost 0, ages Some(65), None, "TH" 10-11, InPerson, also ["physical-activity"]),
            activity!("older-advice", "Advice for older people", ["Age UK {area} Information and Advice"], "Free advice on benefits, care, housing and staying independent.", cost 0, ages Some(50), None, "MO,TU,WE,TH,FR" 9-16, Phone, also ["money"]),
        ],
    },
];

/// The need with the given code.
pub fn need(code: &str) -> Option<&'static Need> {
    NEEDS.iter().find(|n| n.code == code)
}
