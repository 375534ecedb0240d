pub mod guests;
