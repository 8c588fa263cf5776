//! Real neighbourhoods in the three demo areas, with approximate centres, their
//! postcode districts, and the codes of the council and health area that cover them.

/// An area the demo covers, with the geography codes a postcode there carries.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub key: &'static str,
    pub name: &'static str,
    /// ONS/NRS code of the council (`oslaua` in the ONS Postcode Directory).
    pub council_code: &'static str,
    pub council_name: &'static str,
    /// NHS health board (Scotland) or ICB (England).
    pub health_code: &'static str,
    pub health_name: &'static str,
    /// Where phone numbers come from: Ofcom's ranges reserved for drama, never in use.
    pub phone_prefix: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub name: &'static str,
    pub area: &'static Area,
    /// The postcode district ("outward code").
    pub district: &'static str,
    pub lat: f64,
    pub lon: f64,
}

pub static GLASGOW_EAST: Area = Area {
    key: "glasgow-east",
    name: "Glasgow East",
    council_code: "S12000049",
    council_name: "Glasgow City",
    health_code: "S08000031",
    health_name: "NHS Greater Glasgow and Clyde",
    phone_prefix: "0141 496 0",
};

pub static FIFE: Area = Area {
    key: "fife",
    name: "Fife",
    council_code: "S12000047",
    council_name: "Fife",
    health_code: "S08000029",
    health_name: "NHS Fife",
    phone_prefix: "01632 960",
};

pub static SHEFFIELD: Area = Area {
    key: "sheffield",
    name: "Sheffield",
    council_code: "E08000039",
    council_name: "Sheffield",
    health_code: "E54000061",
    health_name: "NHS South Yorkshire ICB",
    phone_prefix: "0114 496 0",
};

pub static AREAS: [&Area; 3] = [&GLASGOW_EAST, &FIFE, &SHEFFIELD];

macro_rules! places {
    ($($name:literal, $area:ident, $district:literal, $lat:literal, $lon:literal;)*) => {
        pub static PLACES: &[Place] = &[$(Place { name: $name, area: &$area, district: $district, lat: $lat, lon: $lon },)*];
    };
}

places! {
    "Parkhead", GLASGOW_EAST, "G31", 55.8515, -4.1967;
    "Dennistoun", GLASGOW_EAST, "G31", 55.8606, -4.2103;
    "Bridgeton", GLASGOW_EAST, "G40", 55.8468, -4.2258;
    "Calton", GLASGOW_EAST, "G40", 55.8540, -4.2340;
    "Shettleston", GLASGOW_EAST, "G32", 55.8525, -4.1596;
    "Tollcross", GLASGOW_EAST, "G32", 55.8456, -4.1737;
    "Carntyne", GLASGOW_EAST, "G32", 55.8630, -4.1735;
    "Barlanark", GLASGOW_EAST, "G33", 55.8605, -4.1367;
    "Easterhouse", GLASGOW_EAST, "G34", 55.8640, -4.1100;
    "Baillieston", GLASGOW_EAST, "G69", 55.8560, -4.1120;
    "Kirkcaldy", FIFE, "KY1", 56.1107, -3.1674;
    "Dunfermline", FIFE, "KY12", 56.0717, -3.4522;
    "Glenrothes", FIFE, "KY7", 56.1955, -3.1780;
    "Methil", FIFE, "KY8", 56.1840, -3.0260;
    "Leven", FIFE, "KY8", 56.1950, -2.9940;
    "Cowdenbeath", FIFE, "KY4", 56.1110, -3.3440;
    "Lochgelly", FIFE, "KY5", 56.1350, -3.3110;
    "St Andrews", FIFE, "KY16", 56.3398, -2.7967;
    "Cupar", FIFE, "KY15", 56.3200, -3.0100;
    "Rosyth", FIFE, "KY11", 56.0450, -3.4300;
    "Firth Park", SHEFFIELD, "S5", 53.4190, -1.4470;
    "Parson Cross", SHEFFIELD, "S5", 53.4300, -1.4770;
    "Southey", SHEFFIELD, "S5", 53.4240, -1.4920;
    "Burngreave", SHEFFIELD, "S4", 53.3970, -1.4610;
    "Page Hall", SHEFFIELD, "S4", 53.4050, -1.4530;
    "Darnall", SHEFFIELD, "S9", 53.3870, -1.4200;
    "Manor", SHEFFIELD, "S2", 53.3720, -1.4300;
    "Heeley", SHEFFIELD, "S8", 53.3560, -1.4700;
    "Sharrow", SHEFFIELD, "S11", 53.3680, -1.4830;
    "Hillsborough", SHEFFIELD, "S6", 53.4050, -1.5000;
    "Gleadless", SHEFFIELD, "S12", 53.3490, -1.4330;
    "Woodhouse", SHEFFIELD, "S13", 53.3600, -1.3650;
}

/// Kinds of venue a neighbourhood has.
pub static VENUES: &[&str] = &[
    "Community Centre",
    "Library",
    "Parish Church Hall",
    "Leisure Centre",
    "Health Centre",
    "Park",
    "Community Hub",
    "Baptist Church",
];

pub static STREETS: &[&str] = &[
    "Main Street",
    "High Street",
    "Church Road",
    "Station Road",
    "Victoria Road",
    "Park Road",
    "Mill Lane",
    "Queen Street",
    "North Street",
    "Green Lane",
    "School Lane",
    "Albert Road",
];
